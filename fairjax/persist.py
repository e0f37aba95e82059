"""On-disk format shared by every fitted generator: a folder of JSON files plus msgpack params.

    config.json     the method's hyperparameters (a flat dataclass)
    encoder.json    the `TabularEncoder`
    model.json      method name, format version, schema and method-specific facts
    params.msgpack  the parameter pytree (Flax msgpack; host numpy arrays, so a model
                    trained on a GPU loads on a CPU)

Never pickle: every file is data, none is code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp

from fairjax.data import Schema, TabularEncoder
from fairjax.errors import FairjaxError

FORMAT_VERSION = 1
FILES = ("config.json", "encoder.json", "model.json", "params.msgpack")


def save(
    path: str | Path,
    *,
    method: str,
    config: Any,
    encoder: TabularEncoder,
    schema: Schema,
    params: Any,
    info: dict,
) -> None:
    """Write a fitted generator to folder `path` (created if needed).

    Args:
      method: method name ("fadm", "vae", ...), checked again on load.
      config: a dataclass of JSON-serialisable hyperparameters.
      encoder: the fitted encoder.
      schema: schema of the training data.
      params: parameter pytree (nested dicts / lists of arrays).
      info: method-specific JSON-serialisable facts (marginals, training history).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = {"method": method, "format_version": FORMAT_VERSION, "schema": schema.to_dict()}
    (path / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    (path / "encoder.json").write_text(json.dumps(encoder.to_dict()))
    (path / "model.json").write_text(json.dumps({**model, "info": info}, indent=2))
    host = jax.device_get(params)
    (path / "params.msgpack").write_bytes(flax.serialization.msgpack_serialize(host))


def read_method(path: str | Path) -> str:
    """The method name of a saved generator; FairjaxError if `path` is not one."""
    path = Path(path)
    if not (path / "model.json").exists():
        raise FairjaxError(f"{path} is not a saved fairjax model: missing model.json")
    model = json.loads((path / "model.json").read_text())
    if model.get("format_version") != FORMAT_VERSION:
        raise FairjaxError(
            f"{path} has format version {model.get('format_version')}; "
            f"this fairjax reads version {FORMAT_VERSION}"
        )
    return model["method"]


def check_method(path: str | Path, method: str) -> None:
    """FairjaxError unless folder `path` holds a saved `method` model."""
    found = read_method(path)
    if found != method:
        raise FairjaxError(f"{path} holds a {found!r} model, not {method!r}")


def load(path: str | Path, *, method: str, config_cls: type) -> dict:
    """Read a folder written by `save` for `method`.

    Returns:
      dict with "config" (a `config_cls`), "encoder", "schema", "params" (jax arrays,
      on the default device) and "info".
    """
    path = Path(path)
    check_method(path, method)
    missing = [f for f in FILES if not (path / f).exists()]
    if missing:
        raise FairjaxError(f"{path} is not a saved {method} model: missing {missing}")
    model = json.loads((path / "model.json").read_text())
    params = flax.serialization.msgpack_restore((path / "params.msgpack").read_bytes())
    return {
        "config": config_cls(**json.loads((path / "config.json").read_text())),
        "encoder": TabularEncoder.from_dict(json.loads((path / "encoder.json").read_text())),
        "schema": Schema.from_dict(model["schema"]),
        "params": jax.tree.map(jnp.asarray, params),
        "info": model["info"],
    }


CORE_FIELDS = ("config", "encoder", "schema", "params")


def save_model(model: Any, path: str | Path, *, method: str) -> None:
    """`save` for a model dataclass whose fields are `CORE_FIELDS` plus JSON-serialisable
    others (marginals, history), which go to model.json's "info" under their field names."""
    info = {
        f.name: plain(getattr(model, f.name))
        for f in dataclasses.fields(model)
        if f.name not in CORE_FIELDS
    }
    core = {name: getattr(model, name) for name in CORE_FIELDS}
    save(path, method=method, info=info, **core)


def load_model(model_cls: type, path: str | Path, *, method: str, config_cls: type) -> Any:
    """Inverse of `save_model`: rebuild `model_cls` from a saved folder (lists read back
    into fields annotated as tuples become tuples; a field with a default that an older
    folder lacks keeps its default)."""
    saved = load(path, method=method, config_cls=config_cls)
    kwargs = {name: saved[name] for name in CORE_FIELDS}
    for f in dataclasses.fields(model_cls):
        if f.name not in CORE_FIELDS:
            if f.name not in saved["info"] and f.default is not dataclasses.MISSING:
                continue
            value = saved["info"][f.name]
            is_tuple = isinstance(value, list) and str(f.type).startswith("tuple")
            kwargs[f.name] = tuple(value) if is_tuple else value
    return model_cls(**kwargs)


def plain(value: Any) -> Any:
    """numpy scalars (and containers of them) as plain Python values for JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
