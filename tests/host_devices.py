"""Run a Python script in a subprocess that sees 8 fake CPU devices (multi-device tests).

JAX fixes its device count at start-up, so a test cannot change it in-process; the script
prints one JSON line as its last output, which `run_on_host_devices` parses and returns.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS_DIR = str(Path(__file__).parent)


def run_on_host_devices(script: str, *, devices: int = 8, timeout: int = 120):
    """The parsed last stdout line of `script` run on `devices` forced host devices; the
    script may `import` from the tests folder."""
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
    )
    prelude = f"import sys\nsys.path.insert(0, {TESTS_DIR!r})\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_processes(argv: list[str], *, processes: int = 2, devices: int = 2, timeout: int = 300):
    """Run `fairjax <argv>` as one multi-process program: `processes` local processes with
    `devices` forced host devices each, joined through a coordinator on a free local port
    (`fairjax --coordinator ... --num-processes ... --process-id ...`). Returns the
    processes' `subprocess.CompletedProcess`es, after all have ended."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
    )
    joined = ["--coordinator", f"localhost:{port}", "--num-processes", str(processes)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "fairjax.cli", *joined, "--process-id", str(i), *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results
