"""Release basics: version, licence, typing marker, dependency floors."""

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import fairjax
from fairjax.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fairjax {fairjax.__version__}"


def test_licence_file_is_the_apache_2_text_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    assert (ROOT / "fairjax" / "py.typed").is_file()


def test_floor_pins_cover_every_dependency_with_its_floor():
    out = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "floor_pins.py"), "test"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pins = dict(line.split("==") for line in out)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    assert len(pins) == len(declared)
    for req in declared:
        name, floor = (s.strip() for s in req.split(">="))
        assert pins[name] == floor, req
    assert int(pins["numpy"].split(".")[0]) >= 2  # np.trapezoid
