"""Many FADM fits as one program (`fadm.fit_many`) against the same fits one by one (`fadm.fit`).

    python benchmarks/bench_batched_fits.py [--smoke] [--overwrite]
        [--out benchmarks/results/batched_fits.json]

The fits are Adult's leave-one-domain-out fits: train on the rows of four of the five
races (MLDG meta-learning across those four), one fit per (held-out race, seed). Only the
held-out races whose remaining rows encode to the full width (97 features; leaving out
Asian-Pac-Islander or White drops categories nobody else has, 96 and 93 features, and
`fit_many` refuses to mix widths) are used: K fits cycle through the three targets
Amer-Indian-Eskimo, Black, Other and the seeds 0, 1, ... (K = 15: three targets x five seeds).

For each size ("quick" and "paper" networks, second-order MLDG as in the presets) and
each K (1, 4, 15 quick; 1, 4 paper by default: 15 paper fits one by one take too long for
a benchmark), the wall time of the K fits one by one and of one `fit_many` call is
measured after a warm-up that compiled every program involved (compilation is reported
apart: a long protocol compiles once). The step counts are cut (quick: `--score-steps` /
`--classifier-steps`, default 200 / 100; paper: `--paper-steps`, default 100 each; stated
in the JSON) so the whole benchmark takes minutes; fits per hour are then extrapolated to
the preset's steps from the measured time per step (the time of a fit is linear in its
steps: the loop is the same compiled chunk over and over; each fit's encoding of its
rows is scaled with the steps too, so fits per hour are slightly underestimated).
`time_ratio_15_quick` is the batched wall time of 15 quick fits over the sequential wall
time (target <= 1/3).
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

from fairjax import datasets, fadm, outputs
from fairjax.data import TabularDataset

TARGETS = ("Amer-Indian-Eskimo", "Black", "Other")


def jobs(adult: TabularDataset, k: int) -> tuple[list, list[TabularDataset]]:
    """K (key, leave-one-race-out training set) pairs: targets cycle, then seeds."""
    keys, sets = [], []
    for i in range(k):
        target, seed = TARGETS[i % len(TARGETS)], i // len(TARGETS)
        frame = adult.frame[adult.frame["race"] != target].reset_index(drop=True)
        sets.append(TabularDataset(frame, adult.schema, name=f"adult without {target}"))
        keys.append(jax.random.fold_in(jax.random.key(seed), i % len(TARGETS)))
    return keys, sets


def block(tree) -> None:
    jax.block_until_ready(jax.tree.leaves(tree))


def sequential(keys, sets, config) -> float:
    t = time.perf_counter()
    for key, ds in zip(keys, sets, strict=True):
        block(fadm.fit(key, ds, config=config, progress=False).params)
    return time.perf_counter() - t


def batched(keys, sets, config) -> float:
    t = time.perf_counter()
    block([m.params for m in fadm.fit_many(keys, sets, config=config, progress=False)])
    return time.perf_counter() - t


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a check of the script)")
    parser.add_argument("--sizes", default="quick,paper", help="comma-separated presets")
    parser.add_argument("--ks", default="1,4,15", help="comma-separated numbers of fits")
    parser.add_argument("--score-steps", type=int, default=200, help="per quick fit")
    parser.add_argument("--classifier-steps", type=int, default=100, help="per quick fit")
    parser.add_argument("--paper-ks", default="1,4", help="numbers of fits at the paper size")
    parser.add_argument(
        "--paper-steps", type=int, default=100, help="score and classifier steps per paper fit"
    )
    parser.add_argument("--out", default="benchmarks/results/batched_fits.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    out = outputs.check_target(Path(args.out), overwrite=args.overwrite, arg="--out")
    ks = {
        "quick": [1, 2] if args.smoke else [int(k) for k in args.ks.split(",")],
        "paper": [1, 2] if args.smoke else [int(k) for k in args.paper_ks.split(",")],
    }
    steps_of = {
        "quick": (args.score_steps, args.classifier_steps),
        "paper": (args.paper_steps, args.paper_steps),
    }
    sizes = args.sizes.split(",")
    adult = datasets.load_adult()  # all rows even in --smoke: a subsample loses categories

    result = {
        "device": str(jax.devices()[0]),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "load_average_start": os.getloadavg(),
        "machine_shared": "2 cores shared with other jobs: see the load averages",
        "targets": list(TARGETS),
        "steps_per_fit_timed": {
            size: {"score": s, "classifier": c} for size, (s, c) in steps_of.items()
        },
        "rows": [],
    }
    print(f"{'size':<6} {'K':>3} {'sequential s':>13} {'batched s':>10} {'ratio':>6} "
          f"{'fits/h seq':>11} {'fits/h batched':>15}  (preset steps, extrapolated)")  # fmt: skip
    for size in sizes:
        preset = fadm.PRESETS[size]
        if args.smoke:
            preset = dataclasses.replace(preset, width=32, num_blocks=1, classifier_width=32)
        score_steps, classifier_steps = steps_of[size]
        config = dataclasses.replace(
            preset, score_steps=score_steps, classifier_steps=classifier_steps, holdout=0.0
        )  # fixed step counts: fit_many has no early stopping
        # warm-up: one chunk of each network compiles every program the timed runs use
        warm = dataclasses.replace(config, score_steps=1, classifier_steps=1)
        keys, sets = jobs(adult, max(ks[size]))
        t = time.perf_counter()
        sequential(keys[:1], sets[:1], warm)
        compile_seq = time.perf_counter() - t
        steps = config.score_steps + 2 * config.classifier_steps
        preset_steps = preset.score_steps + 2 * preset.classifier_steps
        for k in ks[size]:
            t = time.perf_counter()
            batched(keys[:k], sets[:k], warm)
            compile_batched = time.perf_counter() - t
            seq = sequential(keys[:k], sets[:k], config)
            bat = batched(keys[:k], sets[:k], config)
            row = {
                "size": size,
                "k": k,
                "sequential_seconds": seq,
                "batched_seconds": bat,
                "time_ratio": bat / seq,
                "warmup_seconds_sequential": compile_seq,
                "warmup_seconds_batched": compile_batched,
                "steps_per_fit": steps,
                "preset_steps_per_fit": preset_steps,
                # steps are linear in time: fits/hour at the preset's steps
                "fits_per_hour_sequential": 3600 * k / (seq * preset_steps / steps),
                "fits_per_hour_batched": 3600 * k / (bat * preset_steps / steps),
                "load_average": os.getloadavg(),
            }
            result["rows"].append(row)
            print(f"{size:<6} {k:>3} {seq:>13.1f} {bat:>10.1f} {bat / seq:>6.2f} "
                  f"{row['fits_per_hour_sequential']:>11.1f} "
                  f"{row['fits_per_hour_batched']:>15.1f}", flush=True)  # fmt: skip
    quick_15 = [r for r in result["rows"] if r["size"] == "quick" and r["k"] == 15]
    result["time_ratio_15_quick"] = quick_15[0]["time_ratio"] if quick_15 else None
    result["load_average_end"] = os.getloadavg()
    outputs.write_text(out, json.dumps(result, indent=2), overwrite=args.overwrite, arg="--out")
    print(f"time_ratio_15_quick = {result['time_ratio_15_quick']}; wrote {out}")
    return result


if __name__ == "__main__":
    main()
