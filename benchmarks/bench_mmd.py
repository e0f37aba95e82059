"""Time jitted `mmd2` against `mmd2_chunked`, value and value + gradient, on this machine.

    python benchmarks/bench_mmd.py                     # n in (256, 1024, 4096), d = 32
    python benchmarks/bench_mmd.py --sizes 256 1024 --chunk-size 256

Both samples have n rows (so the pooled Gram matrix is 2n x 2n), the five median-heuristic
bandwidths, and the biased estimator; the gradient is taken with respect to ys, as in the
generators' training loss. Each function is jitted once, run once to warm up, then timed
`repeats` times (fewer when one call is slow, to keep the whole run near a minute). Prints a
table and writes JSON to benchmarks/results/mmd_cpu.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from fairjax import outputs
from fairjax.mmd import median_bandwidths, mmd2, mmd2_chunked

DEFAULT_OUT = Path(__file__).parent / "results" / "mmd_cpu.json"


def make_fns(bandwidths, chunk_size):
    """The four jitted functions to time: (variant, mode) -> fn(xs, ys)."""
    full = lambda xs, ys: mmd2(xs, ys, bandwidths=bandwidths)
    chunked = lambda xs, ys: mmd2_chunked(xs, ys, bandwidths=bandwidths, chunk_size=chunk_size)
    return {
        ("mmd2", "value"): jax.jit(full),
        ("mmd2", "value+grad"): jax.jit(jax.value_and_grad(full, argnums=1)),
        ("mmd2_chunked", "value"): jax.jit(chunked),
        ("mmd2_chunked", "value+grad"): jax.jit(jax.value_and_grad(chunked, argnums=1)),
    }


def time_fn(fn, xs, ys, *, max_repeats, budget_s):
    """Compile, warm up, then time calls; returns a dict of seconds and memory."""
    start = time.perf_counter()
    compiled = fn.lower(xs, ys).compile()
    compile_s = time.perf_counter() - start

    start = time.perf_counter()
    jax.block_until_ready(compiled(xs, ys))
    first_s = time.perf_counter() - start

    repeats = int(max(1, min(max_repeats, budget_s // max(first_s, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(xs, ys))
        times.append(time.perf_counter() - start)
    memory = compiled.memory_analysis()
    temp_mb = None if memory is None else memory.temp_size_in_bytes / 2**20
    return {
        "compile_s": compile_s,
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "repeats": repeats,
        "temp_mb": temp_mb,
    }


def run(sizes, dim, chunk_size, max_repeats, budget_s, seed):
    key = jax.random.key(seed)
    rows = []
    for n in sizes:
        data_key, bw_key = jax.random.split(jax.random.fold_in(key, n))
        xs, ys = jax.random.normal(data_key, (2, n, dim))
        ys = ys + 0.1
        bandwidths = median_bandwidths(xs, ys, key=bw_key)
        for (variant, mode), fn in make_fns(bandwidths, chunk_size).items():
            result = time_fn(fn, xs, ys, max_repeats=max_repeats, budget_s=budget_s)
            rows.append({"n": n, "d": dim, "variant": variant, "mode": mode, **result})
            print_row(rows[-1], chunk_size)
    return rows


def print_header():
    print(
        f"{'n':>6} {'variant':<17} {'mode':<11} {'median ms':>10} {'min ms':>9} "
        f"{'reps':>4} {'compile s':>9} {'temp MB':>8}"
    )


def print_row(row, chunk_size):
    variant = row["variant"] + (f"[{chunk_size}]" if row["variant"] == "mmd2_chunked" else "")
    temp = "n/a" if row["temp_mb"] is None else f"{row['temp_mb']:.1f}"
    print(
        f"{row['n']:>6} {variant:<17} {row['mode']:<11} {row['median_ms']:>10.2f} "
        f"{row['min_ms']:>9.2f} {row['repeats']:>4} {row['compile_s']:>9.2f} {temp:>8}",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5, help="most timed calls per case")
    parser.add_argument("--budget-s", type=float, default=2.0, help="timed seconds per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    device = jax.devices()[0]
    print(f"jax {jax.__version__} on {device.platform} ({device.device_kind}), d = {args.dim}")
    print_header()
    start = time.perf_counter()
    rows = run(args.sizes, args.dim, args.chunk_size, args.repeats, args.budget_s, args.seed)
    total_s = time.perf_counter() - start
    print(f"total {total_s:.1f} s")

    report = {
        "benchmark": "mmd2 vs mmd2_chunked (biased, 5 median-heuristic bandwidths, m = n)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "backend": device.platform,
        "device_kind": device.device_kind,
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "chunk_size": args.chunk_size,
        "total_s": total_s,
        "results": rows,
    }
    # regenerating the committed benchmark file is this script's purpose; written atomically
    outputs.write_text(args.out, json.dumps(report, indent=2) + "\n", overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
