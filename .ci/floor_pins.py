"""Print pyproject's dependency floors as `==` pins, one per line, for the floor-version CI step.

Usage: python .ci/floor_pins.py [EXTRA ...]   (core dependencies, then those of each extra)
Every requirement must have a `>=` floor; anything else is an error, so a floor cannot be
forgotten.
"""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
pins = {}
for req in requirements:
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)\s*>=\s*([0-9][0-9A-Za-z.]*)", req.strip())
    if not m:
        sys.exit(f"floor_pins: requirement {req!r} has no plain '>=' floor")
    pins[m.group(1)] = m.group(2)
print("\n".join(f"{name}=={version}" for name, version in pins.items()))
