"""FADM throughput: training steps/s, sampling rows/s, and achieved GFLOP/s vs a matmul.

    python benchmarks/bench_fadm.py [--preset paper|quick] [--out benchmarks/results/fadm_cpu.json]

FLOPs per call come from XLA's own cost analysis of the compiled computation; the
achieved rate is FLOPs / wall time, reported as a fraction of the rate of a large float32
matmul (4096^2, or 2048^2 on CPU) measured in the same run. Shapes are Adult's: 97 encoded
features, batch 256 rows (per domain when meta-learning over 4 domains).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import fadm, guidance, meta, nets, outputs, sde, training

DIM, NUM_DOMAINS = 97, 4


def timed(fn, *args, repeats: int = 5) -> tuple[float, float]:
    """(median seconds per call, FLOPs per call) of a jitted fn, after one warm-up call."""
    compiled = jax.jit(fn).lower(*args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), flops


def matmul_rate() -> float:
    """GFLOP/s of a large float32 matmul on the default device."""
    n = 2048 if jax.default_backend() == "cpu" else 8192
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    seconds, _ = timed(lambda a: a @ a, a)
    return 2 * n**3 / seconds / 1e9


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(fadm.PRESETS))
    parser.add_argument("--sample-rows", type=int, default=1024)
    parser.add_argument("--out", default=f"benchmarks/results/fadm_{jax.default_backend()}.json")
    args = parser.parse_args(argv)

    config = fadm.PRESETS[args.preset]
    b = config.batch_size
    networks = fadm.make_networks(config, DIM, 2, 2)
    modules = fadm.make_modules(config, DIM, 2, 2)
    key = jax.random.key(0)
    example = (jnp.zeros(DIM), jnp.zeros(()))
    params = [
        nets.init_params(m, jax.random.fold_in(key, i), *example) for i, m in enumerate(modules)
    ]
    optimizer = optax.adam(1e-3)
    x = jax.random.normal(key, (b, DIM))
    labels = jax.random.bernoulli(key, 0.5, (b,)).astype(jnp.int32)
    dsm = sde.make_dsm_loss(networks.sde, networks.score_fn)
    clf_loss = sde.make_noisy_classifier_loss(networks.sde, networks.label_logits_fn)

    rows = []

    def record(name, seconds, flops, unit, per_call):
        rows.append(
            {"what": name, "seconds_per_call": seconds, unit: per_call / seconds,
             "gflops_per_s": flops / seconds / 1e9}
        )  # fmt: skip

    step = training.make_train_step(dsm, optimizer)
    state = training.init_train_state(params[0], optimizer)
    record("score net train step", *timed(step, state, x, key), "steps_per_s", 1)
    record("score net DSM loss, forward only", *timed(dsm, params[0], x, key), "steps_per_s", 1)
    step = training.make_train_step(clf_loss, optimizer)
    state = training.init_train_state(params[1], optimizer)
    record("classifier train step", *timed(step, state, (x, labels), key), "steps_per_s", 1)

    meta_step = meta.make_meta_step(dsm, optimizer, inner_lr=config.inner_lr, beta=1.0)
    state = meta.init_meta_state(params[0], optimizer)
    x_in = jax.random.normal(key, ((NUM_DOMAINS - 1) * b, DIM))
    record("score net meta step (2nd order)", *timed(meta_step, state, x_in, x, key),
           "steps_per_s", 1)  # fmt: skip
    meta_fo = meta.make_meta_step(dsm, optimizer, inner_lr=config.inner_lr, beta=1.0,
                                  first_order=True)  # fmt: skip
    record("score net meta step (1st order)", *timed(meta_fo, state, x_in, x, key),
           "steps_per_s", 1)  # fmt: skip

    n = args.sample_rows
    all_params = {"score": params[0], "label": params[1], "sensitive": params[2]}
    keys = jax.random.split(key, n)
    y = jnp.zeros(n, jnp.int32)
    # XLA's cost analysis counts a scan body once, so sampler FLOPs are computed as
    # (score evaluations) x (FLOPs of one guided-score evaluation over all n rows).
    unguided = lambda x, t, cond: networks.score_fn(params[0], x, t)
    label_logits = lambda x, t: networks.label_logits_fn(params[1], x, t)
    sensitive_logits = lambda x, t: networks.sensitive_logits_fn(params[2], x, t)
    score = guidance.fair_guided(
        unguided,
        label_logits_fn=label_logits,
        sensitive_logits_fn=sensitive_logits,
        label_scale=1.0,
        sensitive_scale=1.0,
    )
    batched_score = jax.vmap(score, in_axes=(0, None, 0))
    _, flops_per_eval = timed(batched_score, jnp.zeros((n, DIM)), jnp.float32(0.5), y)
    # Where a guided evaluation's time goes: the score net alone, plus the label guide's
    # gradient, plus the sensitive guide's (the full guided score `score`, two gradients);
    # and the same sum as one gradient of the summed guides (one backward pass).
    label_guide = guidance.label_log_prob(label_logits)
    sensitive_guide = guidance.SENSITIVE_GUIDES[config.guide](sensitive_logits)
    parts = (
        ("score net only", unguided),
        ("score + label guide", guidance.label_guided(unguided, label_logits, 1.0)),
        ("score + both guides", score),
        ("score + both guides, one gradient", guidance.guided(
            unguided, lambda x, t, c: label_guide(x, t, c) + sensitive_guide(x, t, c), 1.0)),
    )  # fmt: skip
    x_rows = jax.random.normal(key, (n, DIM))
    for name, fn in parts:
        record(f"one evaluation: {name} ({n} rows)",
               *timed(jax.vmap(fn, in_axes=(0, None, 0)), x_rows, jnp.float32(0.5), y,
                      repeats=20),
               "rows_per_s", n)  # fmt: skip
    for sampler, steps, evals in (("em", 1000, 1000), ("ode", 50, 100)):
        seconds, _ = timed(
            functools.partial(
                fadm._compiled_sampler(fadm.NetSpec.of(config), DIM, 2, 2, sampler, steps,
                                       config.guide),
                lambda_y=jnp.float32(1.0), lambda_z=jnp.float32(1.0), t_max=jnp.float32(1.0)),
            all_params, keys, y, repeats=3,
        )  # fmt: skip
        record(f"guided sampling {sampler.upper()}-{steps} ({n} rows)", seconds,
               evals * flops_per_eval, "rows_per_s", n)  # fmt: skip

    peak = matmul_rate()
    for r in rows:
        r["fraction_of_matmul"] = r["gflops_per_s"] / peak
    result = {
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "preset": args.preset,
        "matmul_gflops_per_s": peak,
        "rows": rows,
    }
    print(f"device: {result['device']} ({result['device_count']}), preset {args.preset}, "
          f"matmul {peak:.1f} GFLOP/s")  # fmt: skip
    print(f"{'what':<50} {'s/call':>9} {'rate':>14} {'GFLOP/s':>9} {'of matmul':>9}")
    for r in rows:
        unit = "steps_per_s" if "steps_per_s" in r else "rows_per_s"
        rate = f"{r[unit]:.1f} {unit.split('_')[0]}/s"
        print(f"{r['what']:<50} {r['seconds_per_call']:>9.4f} {rate:>14} "
              f"{r['gflops_per_s']:>9.2f} {r['fraction_of_matmul']:>9.1%}")  # fmt: skip
    # regenerating the committed benchmark file is this script's purpose; written atomically
    outputs.write_text(Path(args.out), json.dumps(result, indent=2), overwrite=True)
    return result


if __name__ == "__main__":
    main()
