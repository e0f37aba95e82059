"""Does FADM converge, and does longer training close the lambda_z = 0 accuracy gap?

    python benchmarks/bench_convergence.py [--targets Black,Other] [--max-steps 6000]
        [--out benchmarks/results/convergence_cpu.json] [--overwrite]

Protocol (experiments/fadm_adult.py, preset "cpu", seed 0): train on a stratified 80% of
the rows of the four other race domains (`Runner.split`), score on the left-out domain with
the downstream MLP of `Evaluator`; the real-row reference is the same MLP trained on the
same real rows. FADM runs at the quick preset's network size (the paper preset's 20,000
second-order meta steps take 25-60 min per fit on 2 CPU cores and are not run here) with
the held-out criterion on (`holdout` 0.1, evaluated every `--eval-every` steps) and the
score net's step maximum raised to `--max-steps`.

One fit per target gives every point of the curve: the fit runs with unbounded patience
(so it trains the maximum), and the score net's parameters at every evaluation are kept
by wrapping `training.make_holdout_eval`. Training is prefix-identical (step i uses
fold_in(key, i)), so the parameters at step S are those of a fit of S steps on the same
rows, and the stop step of patience P is read off the recorded criterion curve exactly as
`training.run` would have stopped. For every checkpoint S (and the patience-P stop) the
model samples `n_synthetic` rows at lambda_z = 0, lambda_y = 1, and the MLP trained on
them is scored on the target. The classifiers are the kept (best held-out) ones of the
same fit at every point. Writes JSON; refuses to overwrite without --overwrite.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np
import optax

from experiments import fadm_adult
from fairjax import fadm, outputs, training
from fairjax.data import TabularDataset


def stop_of(eval_steps, eval_scores, patience: int) -> tuple[int, int]:
    """(steps run, best step) of `training.run`'s patience rule on a recorded curve."""
    best, best_step, since = np.inf, 0, 0
    for s, v in zip(eval_steps, eval_scores, strict=True):
        if v < best:
            best, best_step, since = v, s, 0
        else:
            since += 1
            if since >= patience:
                return int(s), int(best_step)
    return int(eval_steps[-1]), int(best_step)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="Black,Other")
    parser.add_argument("--max-steps", type=int, default=6000)
    parser.add_argument("--classifier-steps", type=int, default=2400)
    parser.add_argument("--checkpoints", default="500,1500,3000,6000")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=f"benchmarks/results/convergence_{jax.default_backend()}.json"
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    outputs.check_target(args.out, overwrite=args.overwrite, arg="--out")
    checkpoints = [int(s) for s in args.checkpoints.split(",")]
    preset = fadm_adult.PRESETS["cpu"]
    runner = fadm_adult.Runner(Path("runs/bench_convergence"), "cpu", progress=False)
    evaluator = runner.evaluator
    config = dataclasses.replace(
        fadm.PRESETS["quick"],
        score_steps=args.max_steps,
        classifier_steps=args.classifier_steps,
        holdout=0.1,
        eval_every=args.eval_every,
        patience=10**6,  # train the maximum; the patience rule is applied to the curve
    )

    kept: list = []  # (network index, step, params) at every evaluation
    make_eval = training.make_holdout_eval

    def recording_eval(loss_fn, data, key):
        eval_fn, network = make_eval(loss_fn, data, key), len({k[0] for k in kept})

        def wrapped(state):
            kept.append((network, int(state.step), state.params))
            return eval_fn(state)

        return wrapped

    start = time.time()
    result = {"targets": {}}
    for target in args.targets.split(","):
        sources = [d for d in fadm_adult.DOMAINS if d != target]
        train, _ = runner.split(sources, args.seed)
        test = runner.rows_of([target])
        key = jax.random.fold_in(jax.random.key(args.seed), 11)
        fit_key, sample_key, clf_key = jax.random.split(key, 3)
        real = evaluator.score(evaluator.fit(clf_key, train), test)["mlp"]
        t0 = time.time()
        kept.clear()
        training.make_holdout_eval = recording_eval
        try:
            data = TabularDataset(train, runner.adult.schema, name="adult-sources")
            model = fadm.fit(fit_key, data, config=config, progress=False)
        finally:
            training.make_holdout_eval = make_eval
        fit_seconds = time.time() - t0
        networks = {}
        for name in ("score", "label", "sensitive"):
            rec = model.history["record"][name]
            run, best = stop_of(rec["eval_steps"], rec["eval_scores"], args.patience)
            networks[name] = {
                "eval_steps": rec["eval_steps"],
                "eval_scores": rec["eval_scores"],
                "best_step_over_max": rec["best_step"],
                f"stop_step_patience_{args.patience}": run,
                f"kept_step_patience_{args.patience}": best,
            }
        score_params = {step: p for net, step, p in kept if net == 0}
        points = {f"steps={s}": s for s in checkpoints}
        points["criterion"] = networks["score"][f"kept_step_patience_{args.patience}"]
        curve = {}
        for tag, step in points.items():
            m = dataclasses.replace(model, params={**model.params, "score": score_params[step]})
            table = m.sample(sample_key, preset.n_synthetic, lambda_z=0.0, lambda_y=1.0)
            acc = evaluator.score(evaluator.fit(clf_key, table), test)["mlp"]
            norm = float(optax.tree.norm(score_params[step]))  # distinct parameters per point
            curve[tag] = {"score_steps": step, **acc, "acc_gap": acc["acc"] - real["acc"]}
            curve[tag]["score_params_norm"] = norm
            print(f"{target} {tag}: acc {acc['acc']:.2f} (real {real['acc']:.2f})", flush=True)
        result["targets"][target] = {
            "real": real,
            "networks": networks,
            "curve": curve,
            "fit_seconds": fit_seconds,
            "train_rows": len(train),
        }
    result.update(
        command="python benchmarks/bench_convergence.py"
        + (f" --targets {args.targets}" if args.targets != "Black,Other" else ""),
        args=vars(args),
        config=dataclasses.asdict(config),
        wall_seconds=time.time() - start,
        machine=f"{platform.machine()} {jax.default_backend()} {jax.device_count()} device(s)",
        load_at_end=" ".join(f"{v:.2f}" for v in os.getloadavg()),
        mean_gap={
            tag: float(np.mean([t["curve"][tag]["acc_gap"] for t in result["targets"].values()]))
            for tag in next(iter(result["targets"].values()))["curve"]
        },
    )
    outputs.write_text(Path(args.out), json.dumps(result, indent=2), overwrite=args.overwrite)
    print(json.dumps(result["mean_gap"], indent=1))
    return result


if __name__ == "__main__":
    main()
