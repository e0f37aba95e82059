"""How FADM's cost grows: sampling time and peak memory against rows, fit time against rows
and against the encoded width.

    python benchmarks/bench_scaling.py [--smoke] [--out benchmarks/results/scaling_cpu.json]

- Sampling: one FADM (quick networks, a short fit on Adult, 97 encoded features) saved once;
  each row count n in 10^3 ... 10^6 is sampled by `fairjax sample` in a fresh process (ODE
  sampler, `--steps` steps, rows streamed to CSV in chunks of `cli.SAMPLE_CHUNK`), which
  reports its own wall time and peak resident memory. Linear time and flat memory are the
  claims under test.
- Fit: FADM quick networks for a fixed number of steps on synthetic rows (numeric columns
  only, so the encoded width is the column count), against rows
  (10^3 ... 10^5 at width ~97) and against width (~97 ... ~1,000 at 10^4 rows). Each fit runs
  in a fresh process: a first fit compiles, then two fits of different lengths give the
  time of one step of each of the three networks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from fairjax import outputs

# Run in a child process: argv[1] is a JSON job; prints one JSON line (seconds, peak MiB).
_CHILD = r"""
import json, resource, sys, time
job = json.loads(sys.argv[1])
start = time.perf_counter()
if job["kind"] == "sample":
    from fairjax.cli import main
    assert main(job["argv"]) == 0
    result = {}
else:
    import dataclasses
    import jax, numpy as np, pandas as pd
    from fairjax import fadm
    from fairjax.data import Schema, TabularDataset
    rng = np.random.default_rng(0)
    n, k = job["rows"], job["columns"]
    s = rng.integers(0, 2, n)
    x = rng.normal(size=(n, k)) + 0.5 * s[:, None]
    y = (x[:, : min(k, 5)].sum(1) + rng.normal(size=n) > 1.0).astype(int)
    cols = [f"x{i}" for i in range(k)]
    frame = pd.DataFrame(x, columns=cols).assign(s=np.where(s, "a", "b"), y=y)
    schema = Schema(label="y", sensitive=("s",), categorical=("s", "y"), numeric=tuple(cols))
    data = TabularDataset(frame, schema, name="synthetic")
    times = []
    for steps in [job["steps"][0], *job["steps"]]:  # the first fit compiles
        config = dataclasses.replace(fadm.PRESETS["quick"], score_steps=steps,
                                     classifier_steps=steps, meta="off", scaling="standard")
        t = time.perf_counter()
        model = fadm.fit(jax.random.key(0), data, config=config, progress=False)
        times.append(time.perf_counter() - t)
    result = {"compile_and_first_fit_seconds": times[0], "fit_seconds": times[1:],
              "width": int(model.encoder.dim)}
result["seconds"] = time.perf_counter() - start
result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def child(job: dict) -> dict:
    """Run `job` in a fresh Python process; its last stdout line, parsed."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(job)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def linear_fit(x, y) -> dict:
    """y = fixed + per_unit x by least squares, and the largest residual relative to y."""
    per_unit, fixed = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    residual = np.abs(np.asarray(y) - (fixed + per_unit * np.asarray(x))) / np.asarray(y)
    return {
        "fixed": float(fixed),
        "per_unit": float(per_unit),
        "max_rel_residual": float(residual.max()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a check of the script)")
    parser.add_argument("--steps", type=int, default=10, help="ODE steps of the sampling runs")
    parser.add_argument("--out", default=f"benchmarks/results/scaling_{jax.default_backend()}.json")
    args = parser.parse_args(argv)
    rows = [1_000, 10_000] if args.smoke else [1_000, 10_000, 100_000, 1_000_000]
    fit_rows = [1_000, 3_000] if args.smoke else [1_000, 10_000, 100_000]
    widths = [95, 195] if args.smoke else [95, 295, 995]
    steps = [20, 40] if args.smoke else [200, 400]

    result = {
        "device": str(jax.devices()[0]),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "load_average_start": os.getloadavg(),
        "sample_steps": args.steps,
        "sampling": [],
        "fit_rows": [],
        "fit_width": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        fit = ["fit", "--method", "fadm", "--data", "adult", "--preset", "quick", "--quiet"]
        short = ["--set", "score_steps=50", "--set", "classifier_steps=50", "--set", "meta=off"]
        child({"kind": "sample", "argv": [*fit, *short, "--out", str(model)]})
        for n in rows:
            out = Path(tmp) / f"rows_{n}.csv"
            r = child(
                {
                    "kind": "sample",
                    "argv": ["sample", "--model", str(model), "-n", str(n), "--sampler", "ode",
                             "--steps", str(args.steps), "--quiet", "--out", str(out)],
                }
            )  # fmt: skip
            out.unlink()
            result["sampling"].append({"rows": n, **r, "rows_per_s": n / r["seconds"]})
            print(f"sample {n:>9,} rows: {r['seconds']:8.1f} s, peak {r['peak_mib']:7.0f} MiB")
    for n in fit_rows:
        r = child({"kind": "fit", "rows": n, "columns": 95, "steps": steps})
        result["fit_rows"].append({"rows": n, **r})
        print(f"fit {n:>9,} rows x {r['width']} wide: {r['fit_seconds']} s")
    for k in widths:
        r = child({"kind": "fit", "rows": fit_rows[1], "columns": k, "steps": steps})
        result["fit_width"].append({"columns": k, **r})
        print(f"fit {fit_rows[1]:>9,} rows x {r['width']} wide: {r['fit_seconds']} s")

    def per_step(r):  # one step of each of the three networks; compile time cancels
        return (r["fit_seconds"][1] - r["fit_seconds"][0]) / (steps[1] - steps[0])

    s = result["sampling"]
    # fixed: process start, loading and compiling; per_unit: seconds per row
    result["sampling_time_fit"] = linear_fit([r["rows"] for r in s], [r["seconds"] for r in s])
    result["sampling_peak_mib_ratio"] = s[-1]["peak_mib"] / s[0]["peak_mib"]
    for r in result["fit_rows"] + result["fit_width"]:
        r["seconds_per_step_of_the_three_networks"] = per_step(r)
    result["load_average_end"] = os.getloadavg()
    lin = result["sampling_time_fit"]
    print(f"sampling time = {lin['fixed']:.1f} s + {1e3 * lin['per_unit']:.3f} ms/row (largest "
          f"residual {lin['max_rel_residual']:.0%}); peak memory x"
          f"{result['sampling_peak_mib_ratio']:.2f} from {rows[0]:,} to {rows[-1]:,} "
          "rows")  # fmt: skip
    # regenerating the committed benchmark file is this script's purpose; written atomically
    outputs.write_text(Path(args.out), json.dumps(result, indent=2), overwrite=True)
    return result


if __name__ == "__main__":
    main()
