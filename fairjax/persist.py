"""On-disk format shared by every fitted generator: a verified folder of JSON and msgpack.

    manifest.json   format version, method, fairjax / jax / flax versions, seed, a
                    fingerprint of the training data (rows, columns, SHA-256) and the
                    SHA-256 of every other file
    config.json     the method's hyperparameters (a flat dataclass)
    encoder.json    the `TabularEncoder`
    model.json      method name, format version, schema and method-specific facts
    params.msgpack  the parameter pytree (Flax msgpack; host numpy arrays, so a model
                    trained on a GPU loads on a CPU)

Methods with other files (FairCauseSyn) write them through `write_folder` / `read_folder`,
so every folder has a manifest and is checked the same way. The folder is built beside the
target and renamed into place (`fairjax.outputs.atomic_folder`); loading checks every hash,
the config's keys and values, and names the folder and the problem in one `FairjaxError`.
Folders from before the manifest still load, with a warning that they are not verified.

Never pickle: every file is data, none is code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from fairjax import outputs
from fairjax.data import Schema, TabularEncoder
from fairjax.errors import FairjaxError, FairjaxWarning

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
FILES = ("config.json", "encoder.json", "model.json", "params.msgpack")


# ------------------------------------------------------------------ provenance


def fingerprint(frame: Any) -> dict:
    """Rows, column names and a SHA-256 of a training table's values (pandas' stable row
    hashes, in order), for the manifest."""
    import pandas as pd

    frame = getattr(frame, "frame", frame)
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(json.dumps(list(map(str, frame.columns))).encode())
    digest.update(np.ascontiguousarray(hashes).tobytes())
    return {
        "rows": len(frame),
        "columns": list(map(str, frame.columns)),
        "sha256": digest.hexdigest(),
    }


def provenance(*, seed: int | None = None, data: Any = None) -> dict:
    """The manifest's "seed" and "data" entries (`data`: a DataFrame or TabularDataset)."""
    return {"seed": seed, "data": None if data is None else fingerprint(data)}


def _versions() -> dict:
    import fairjax

    return {"fairjax": fairjax.__version__, "jax": jax.__version__, "flax": flax.__version__}


# ------------------------------------------------------------ folders of files


def replaceable(path: Path) -> str | None:
    """Why an existing folder must not be replaced by a model (None: it may)."""
    if not any(path.iterdir()) or (path / "model.json").exists():
        return None
    return "it is not empty and holds no fairjax model (no model.json)"


def write_folder(
    path: str | Path,
    files: dict[str, bytes],
    *,
    method: str,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> None:
    """Write `files` (relative path -> bytes) and a manifest as folder `path`, atomically.

    Args:
      path: the model folder; an existing one is refused unless `overwrite` (and even then
        a non-empty folder that is not a fairjax model is refused).
      files: the folder's contents, e.g. {"config.json": b"...", "local/params.msgpack": ...}.
      method: method name, recorded and checked on load.
      overwrite: replace an existing model folder.
      provenance: `provenance(seed=..., data=...)`; None records neither.
    """
    prov = provenance or {}
    manifest = {
        "format": "fairjax-model",
        "manifest_version": MANIFEST_VERSION,
        "method": method,
        "versions": _versions(),
        "seed": prov.get("seed"),
        "data": prov.get("data"),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    with outputs.atomic_folder(path, overwrite=overwrite, replaceable=replaceable) as tmp:
        for name, data in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_manifest(path: str | Path) -> dict | None:
    """The parsed manifest of model folder `path`, or None for an older folder without one."""
    path = Path(path)
    if not path.is_dir():
        what = "it is a file, not a folder" if path.exists() else "no such folder"
        raise FairjaxError(f"{path} is not a saved fairjax model: {what}")
    if not (path / MANIFEST).exists():
        return None
    manifest = _parse_json(path, MANIFEST, (path / MANIFEST).read_bytes())
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != "fairjax-model" or not isinstance(files, dict):
        raise FairjaxError(f"{path}: {MANIFEST} is not a fairjax model manifest")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise FairjaxError(
            f"{path}: manifest version {manifest.get('manifest_version')!r}; this fairjax "
            f"reads version {MANIFEST_VERSION}"
        )
    return manifest


def read_folder(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file of model folder `path` (relative path -> bytes), verified.

    With a manifest, each file it lists must exist and match its SHA-256; without one
    (an older fairjax) a warning says the folder is not verified. Either way the files in
    `required` must be present.
    """
    path = Path(path)
    manifest = read_manifest(path)
    files: dict[str, bytes] = {}
    if manifest is None and not (path / "model.json").is_file():
        what = f"missing {MANIFEST} and model.json"
        raise FairjaxError(f"{path} is not a saved fairjax model: {what}")
    if manifest is None:
        warnings.warn(
            f"{path} has no {MANIFEST} (saved by an older fairjax): its files are not verified; "
            "save it again to add one",
            FairjaxWarning,
            stacklevel=2,
        )
        for f in sorted(path.rglob("*")):
            if f.is_file():
                files[f.relative_to(path).as_posix()] = f.read_bytes()
    else:
        for name, digest in manifest["files"].items():
            f = path / name
            if not f.is_file():
                raise FairjaxError(f"{path}: {name} is missing (listed in {MANIFEST})")
            data = f.read_bytes()
            if hashlib.sha256(data).hexdigest() != digest:
                raise FairjaxError(
                    f"{path}: {name} does not match its SHA-256 in {MANIFEST} "
                    "(truncated, edited or replaced)"
                )
            files[name] = data
    missing = [name for name in required if name not in files]
    if missing:
        raise FairjaxError(f"{path} is not a complete saved model: missing {missing}")
    return files


def _parse_json(path: Path, name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FairjaxError(f"{path}: {name} is not valid JSON ({e})") from None


def json_file(path: str | Path, files: dict[str, bytes], name: str) -> Any:
    """File `name` of a folder read by `read_folder`, parsed as JSON (FairjaxError if not)."""
    if name not in files:
        raise FairjaxError(f"{path}: {name} is missing")
    return _parse_json(Path(path), name, files[name])


def params_file(path: str | Path, files: dict[str, bytes], name: str = "params.msgpack") -> Any:
    """The parameter pytree in file `name`, as jax arrays on the default device."""
    if name not in files:
        raise FairjaxError(f"{path}: {name} is missing")
    try:
        params = flax.serialization.msgpack_restore(files[name])
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        raise FairjaxError(f"{path}: {name} is not a readable parameter file ({e})") from None
    leaves = jax.tree.leaves(params)
    for leaf in leaves:
        a = np.asarray(leaf)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise FairjaxError(f"{path}: {name} holds non-finite (NaN or infinite) parameters")
    return jax.tree.map(jnp.asarray, params)


# ---------------------------------------------------------------------- configs


# Integer fields with these names count something and must be >= 1.
_COUNT_WORDS = ("steps", "width", "dim", "size", "blocks", "layers", "hidden", "heads", "ratio")


def check_config_values(config: Any, *, where: str = "") -> None:
    """Generic checks of a config dataclass's values that every method shares: floats are
    finite, counts (fields whose names contain steps, width, dim, size, blocks, layers,
    hidden, heads, ratio) are >= 1, learning rates (lr, *_lr) are > 0. Method-specific
    checks are each config's `__post_init__`."""
    prefix = f"{where}: " if where else ""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise FairjaxError(f"{prefix}{f.name} must be a finite number; got {value!r}")
        is_count = any(w in f.name for w in _COUNT_WORDS) and not f.name.startswith("warmup")
        if isinstance(value, int) and not isinstance(value, bool) and is_count and value < 1:
            raise FairjaxError(f"{prefix}{f.name} must be a positive integer; got {value!r}")
        is_rate = f.name == "lr" or f.name.endswith("_lr")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and is_rate:
            if not value > 0:
                raise FairjaxError(f"{prefix}{f.name} must be positive; got {value!r}")


def make_config(config_cls: type, values: Any, *, where: str) -> Any:
    """`config_cls(**values)` from a saved config.json, with one clear error for a key the
    class does not have, a value of the wrong type or one its checks refuse."""
    if not isinstance(values, dict):
        raise FairjaxError(f"{where}: config.json must hold an object of options")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FairjaxError(
            f"{where}: config.json has unknown option(s) {unknown} for {config_cls.__name__}"
        )
    defaults = config_cls()
    for name, value in values.items():
        expected = type(getattr(defaults, name))
        if expected is type(None):
            continue
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if expected is not bool and isinstance(value, bool):
            ok = False
        if not ok:
            raise FairjaxError(
                f"{where}: config.json option {name}={value!r} is not a {expected.__name__}"
            )
    try:
        config = config_cls(**values)
    except FairjaxError as e:
        raise FairjaxError(f"{where}: config.json: {e}") from None
    except (TypeError, ValueError) as e:
        raise FairjaxError(f"{where}: config.json: {e}") from None
    check_config_values(config, where=f"{where}: config.json")
    return config


# ------------------------------------------------------------- the common format


def save(
    path: str | Path,
    *,
    method: str,
    config: Any,
    encoder: TabularEncoder,
    schema: Schema,
    params: Any,
    info: dict,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> None:
    """Write a fitted generator to folder `path` (atomically, with a manifest).

    Args:
      method: method name ("fadm", "vae", ...), checked again on load.
      config: a dataclass of JSON-serialisable hyperparameters.
      encoder: the fitted encoder.
      schema: schema of the training data.
      params: parameter pytree (nested dicts / lists of arrays).
      info: method-specific JSON-serialisable facts (marginals, training history).
      overwrite: replace an existing model folder (otherwise FairjaxError).
      provenance: seed and training-data fingerprint for the manifest (`provenance(...)`).
    """
    model = {"method": method, "format_version": FORMAT_VERSION, "schema": schema.to_dict()}
    host = jax.device_get(params)
    if not all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(host)):
        raise FairjaxError(f"{method} parameters are not finite (NaN or infinite); not saved")
    files = {
        "config.json": json.dumps(dataclasses.asdict(config), indent=2).encode(),
        "encoder.json": json.dumps(encoder.to_dict()).encode(),
        "model.json": json.dumps({**model, "info": info}, indent=2).encode(),
        "params.msgpack": flax.serialization.msgpack_serialize(host),
    }
    write_folder(path, files, method=method, overwrite=overwrite, provenance=provenance)


def read_method(path: str | Path) -> str:
    """The method name of a saved generator; FairjaxError if `path` is not one."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is not None:
        return str(manifest.get("method"))
    if not (path / "model.json").is_file():
        raise FairjaxError(f"{path} is not a saved fairjax model: missing model.json")
    model = _parse_json(path, "model.json", (path / "model.json").read_bytes())
    return _check_model_json(path, model)


def _check_model_json(path: Path, model: Any) -> str:
    if not isinstance(model, dict) or "method" not in model:
        raise FairjaxError(f"{path}: model.json does not name a method")
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


def read_model_json(path: str | Path, files: dict[str, bytes], method: str) -> dict:
    """model.json of a verified folder, checked to be a `method` model of this format."""
    model = json_file(path, files, "model.json")
    found = _check_model_json(Path(path), model)
    if found != method:
        raise FairjaxError(f"{path} holds a {found!r} model, not {method!r}")
    return model


def load(path: str | Path, *, method: str, config_cls: type) -> dict:
    """Read and verify a folder written by `save` for `method`.

    Returns:
      dict with "config" (a `config_cls`), "encoder", "schema", "params" (jax arrays,
      on the default device), "info" and "manifest" (None for an older folder).
    """
    path = Path(path)
    check_method(path, method)
    files = read_folder(path, FILES)
    model = read_model_json(path, files, method)
    try:
        encoder = TabularEncoder.from_dict(json_file(path, files, "encoder.json"))
        schema = Schema.from_dict(model["schema"])
        info = model["info"]
    except FairjaxError as e:
        raise FairjaxError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise FairjaxError(f"{path}: encoder.json or model.json is malformed ({e!r})") from None
    return {
        "config": make_config(config_cls, json_file(path, files, "config.json"), where=str(path)),
        "encoder": encoder,
        "schema": schema,
        "params": params_file(path, files),
        "info": info,
        "manifest": read_manifest(path),
    }


def check_param_shapes(path: str | Path, params: Any, expected: Any) -> None:
    """FairjaxError naming the first leaf of `params` whose structure or shape differs from
    `expected` (a pytree of arrays or `jax.ShapeDtypeStruct`s, e.g. from `jax.eval_shape`)."""
    got = dict(jax.tree_util.tree_flatten_with_path(params)[0])
    want = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
    for p in sorted(set(got) | set(want), key=str):
        name = jax.tree_util.keystr(p)
        if p not in got or p not in want:
            where = "missing from" if p not in got else "unexpected in"
            raise FairjaxError(f"{path}: parameter {name} is {where} params.msgpack")
        if tuple(np.shape(got[p])) != tuple(want[p].shape):
            raise FairjaxError(
                f"{path}: parameter {name} has shape {tuple(np.shape(got[p]))}; the config "
                f"needs {tuple(want[p].shape)}"
            )


CORE_FIELDS = ("config", "encoder", "schema", "params")


def save_model(
    model: Any,
    path: str | Path,
    *,
    method: str,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> None:
    """`save` for a model dataclass whose fields are `CORE_FIELDS` plus JSON-serialisable
    others (marginals, history), which go to model.json's "info" under their field names."""
    info = {
        f.name: plain(getattr(model, f.name))
        for f in dataclasses.fields(model)
        if f.name not in CORE_FIELDS
    }
    core = {name: getattr(model, name) for name in CORE_FIELDS}
    save(path, method=method, info=info, overwrite=overwrite, provenance=provenance, **core)


def load_model(model_cls: type, path: str | Path, *, method: str, config_cls: type) -> Any:
    """Inverse of `save_model`: rebuild `model_cls` from a saved folder (lists read back
    into fields annotated as tuples become tuples; a field with a default that an older
    folder lacks keeps its default)."""
    saved = load(path, method=method, config_cls=config_cls)
    kwargs = {name: saved[name] for name in CORE_FIELDS}
    for f in dataclasses.fields(model_cls):
        if f.name not in CORE_FIELDS:
            if not isinstance(saved["info"], dict):
                raise FairjaxError(f"{path}: model.json's info is not an object")
            if f.name not in saved["info"]:
                if f.default is not dataclasses.MISSING:
                    continue  # a field added later: older folders keep its default
                raise FairjaxError(f"{path}: model.json lacks {f.name!r}")
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
