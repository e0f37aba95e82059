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
