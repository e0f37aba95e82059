"""Time and measure encode + decode of 1M Adult-like rows: vectorised normal quantiles vs the old
element-by-element ones.

    python benchmarks/bench_encoder.py                 # 1,000,000 rows
    python benchmarks/bench_encoder.py --rows 200000

Rows are drawn with replacement from the bundled Adult rows (all 15 columns; 6 numeric with
quantile scaling, 9 categorical). "new" is `TabularEncoder.encode` / `decode` as they are
(scipy's `ndtri` / `ndtr`, one-hot set in place, no float64 copy on decode); "old" is the
previous implementation, reimplemented below on the same fitted codecs
(`statistics.NormalDist().inv_cdf` and `math.erfc` through `np.frompyfunc`, float64 one-hot
temporaries, a float64 copy of the whole array and strided argmax on decode).
Each variant is timed `repeats` times (best and median reported); peak memory is measured
in a separate run under `tracemalloc` (it traces numpy's buffers; its own overhead would
distort the timings). Prints a table and writes JSON to benchmarks/results/encoder_cpu.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from fairjax import datasets
from fairjax.data import encoder as em
from fairjax.data import fit_encoder

DEFAULT_OUT = Path(__file__).parent / "results" / "encoder_cpu.json"

_old_ppf = np.frompyfunc(statistics.NormalDist().inv_cdf, 1, 1)
_old_erfc = np.frompyfunc(math.erfc, 1, 1)


def old_encode(enc, frame: pd.DataFrame) -> np.ndarray:
    """`TabularEncoder.encode` before this change: scalar quantiles, float64 one-hot blocks."""
    em._check_present(frame, list(enc.columns))
    out = np.zeros((len(frame), enc.dim), np.float32)
    for codec in enc.codecs:
        col = frame[codec.name]
        if codec.kind == "categorical":
            cats = pd.Index(list(codec.categories), dtype=object)
            codes = cats.get_indexer(col.to_numpy(object))
            if (codes < 0).any():
                raise ValueError(codec.name)
            block = np.eye(codec.width)[codes]
        else:
            x = em._numeric_values(codec.name, col, "at encode")
            if codec.scaling == "quantile":
                u = np.clip(
                    em._empirical_cdf(x, np.asarray(codec.knots)), em.CDF_CLIP, 1 - em.CDF_CLIP
                )
                block = _old_ppf(u).astype(np.float64)[:, None]
            else:
                block = ((x - codec.loc) / codec.scale)[:, None]
        out[:, codec.start : codec.stop] = block
    return out


def old_decode(enc, x) -> pd.DataFrame:
    """`TabularEncoder.decode` before this change: float64 copy, strided argmax, scalar CDF."""
    x = np.asarray(x, dtype=np.float64)
    if (~np.isfinite(x)).any():
        raise ValueError("non-finite")
    columns = {}
    for codec in enc.codecs:
        block = x[:, codec.start : codec.stop]
        if codec.kind == "categorical":
            values = np.array(codec.categories, dtype=object)[np.argmax(block, axis=1)]
            if codec.dtype == "category":
                columns[codec.name] = pd.Series(
                    pd.Categorical(values, categories=list(codec.categories))
                )
            else:
                columns[codec.name] = pd.Series(values, dtype=object).astype(codec.dtype)
            continue
        z = block[:, 0]
        if codec.scaling == "quantile":
            u = 0.5 * _old_erfc(-z / math.sqrt(2.0)).astype(np.float64)
            u = np.where(u <= em._CDF_SNAP, 0.0, np.where(u >= 1 - em._CDF_SNAP, 1.0, u))
            knots = np.asarray(codec.knots)
            v = np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots)
        else:
            v = z * codec.scale + codec.loc
        if codec.is_integer:
            v = np.round(v)
        v = np.clip(v, codec.min_value, codec.max_value)
        columns[codec.name] = pd.Series(v).astype(codec.dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(x)))


VARIANTS = {
    "old": (old_encode, old_decode),
    "new": (lambda enc, frame: enc.encode(frame), lambda enc, x: enc.decode(x)),
}


def encode_decode(name, enc, frame):
    """(encode seconds, decode seconds, encoded array, decoded frame) of one variant."""
    encode, decode = VARIANTS[name]
    t0 = time.perf_counter()
    x = encode(enc, frame)
    t1 = time.perf_counter()
    back = decode(enc, x)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, x, back


def peak_mib(name, enc, frame) -> float:
    """Peak traced memory (MiB) of one encode + decode, above what was allocated before."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    encode_decode(name, enc, frame)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    adult = datasets.load_adult()
    enc = fit_encoder(adult)  # quantile scaling, fitted on the 45,222 real rows
    rng = np.random.default_rng(args.seed)
    frame = adult.frame.iloc[rng.integers(0, len(adult), args.rows)].reset_index(drop=True)
    n_numeric = sum(c.kind == "numeric" for c in enc.codecs)
    print(
        f"{args.rows:,} Adult-like rows, {len(enc.codecs)} columns ({n_numeric} numeric, "
        f"quantile scaling), encoded width {enc.dim}; numpy {np.__version__}, "
        f"scipy {scipy.__version__}, load {os.getloadavg()[0]:.2f}"
    )

    rows, outputs = [], {}
    for name in ("old", "new"):
        runs = [encode_decode(name, enc, frame) for _ in range(args.repeats)]
        outputs[name] = runs[-1][2:]
        peak = peak_mib(name, enc, frame)
        enc_s = [r[0] for r in runs]
        dec_s = [r[1] for r in runs]
        tot_s = [a + b for a, b in zip(enc_s, dec_s, strict=True)]
        rows.append(
            {
                "variant": name,
                "encode_s_best": min(enc_s),
                "decode_s_best": min(dec_s),
                "total_s_best": min(tot_s),
                "total_s_median": statistics.median(tot_s),
                "peak_mib": peak,
            }
        )

    (x_old, back_old), (x_new, back_new) = outputs["old"], outputs["new"]
    max_abs_encoded = float(np.max(np.abs(x_old.astype(np.float64) - x_new)))
    decoded_equal = bool(back_old.equals(back_new))
    speedup = rows[0]["total_s_best"] / rows[1]["total_s_best"]

    print(f"{'variant':8s} {'encode s':>9s} {'decode s':>9s} {'total s':>8s} {'peak MiB':>9s}")
    for r in rows:
        print(
            f"{r['variant']:8s} {r['encode_s_best']:9.2f} {r['decode_s_best']:9.2f} "
            f"{r['total_s_best']:8.2f} {r['peak_mib']:9.0f}"
        )
    print(
        f"speed-up {speedup:.1f}x; max |old - new| encoded {max_abs_encoded:.2e}; "
        f"decoded frames identical: {decoded_equal}"
    )

    report = {
        "benchmark": "TabularEncoder encode + decode, Adult-like rows, quantile scaling",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "columns": len(enc.codecs),
        "numeric_columns": n_numeric,
        "encoded_width": enc.dim,
        "repeats": args.repeats,
        "timing": "best of repeats, time.perf_counter; peak memory from a separate tracemalloc run",
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "results": rows,
        "speedup_total": speedup,
        "max_abs_diff_encoded": max_abs_encoded,
        "decoded_frames_identical": decoded_equal,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
