"""One on-disk format for every fitted generator: a verified folder of JSON and msgpack.

    manifest.json   format, method, fairjax / jax / flax versions, seed, a fingerprint of
                    the training data (rows, columns, SHA-256) and the SHA-256 of every
                    other file (those of nested models included)
    config.json     the method's hyperparameters (a flat dataclass)
    encoder.json    the `TabularEncoder` (models that have one)
    model.json      method, format version, schema (models that have one), "info" (JSON
                    facts: training history, marginals, roles, ...), the names of the extra
                    arrays and of the nested models
    params.msgpack  the parameter pytree (Flax msgpack of host numpy arrays, so a model
                    trained on a GPU loads on a CPU; models that have parameters)
    arrays.msgpack  extra named arrays (e.g. the training rows a model mixes), if any
    NAME/           a nested model (e.g. FairCauseSyn's local transformer), written by the
                    same code into a sub-folder; the top manifest covers its files

`save_model(model, path)` writes any model that follows the `Persistable` protocol (a
frozen dataclass with class attributes `method` and `config_cls`, and optional hooks for
info, arrays and nested models) and `load_model(model_cls, path)` reads it back. The folder
is built beside the target and renamed into place (`fairjax.outputs.atomic_folder`); loading
checks every hash, the config's keys and values and the parameter shapes the config implies
(`_param_shapes`), and names the folder, the file and the problem in one `FairjaxError`.
Saving the same model twice gives byte-identical folders (the manifest has no time stamp).

Older folders still load: those without a manifest (with a warning that they are not
verified) and those of format 1, whose per-method layouts (`_upgrade_v1`) are rearranged
in memory into this one before the single read path runs.

Never pickle: every file is data, none is code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from fairjax import outputs
from fairjax.data import Schema, TabularEncoder
from fairjax.errors import FairjaxError, FairjaxWarning

FORMAT_VERSION = 2  # of model.json and the folder layout; 1 is still read (`_upgrade_v1`)
READ_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
ARRAYS = "arrays.msgpack"
CORE_FIELDS = ("config", "encoder", "schema", "params")
# The files of a model with every core field and no extra arrays or nested models.
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


def read_folder(path: str | Path) -> dict[str, bytes]:
    """Every file of model folder `path` (relative path -> bytes), verified.

    With a manifest, each file it lists must exist and match its SHA-256; without one
    (an older fairjax) a warning says the folder is not verified.
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
    return files


def _parse_json(path: Path, name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FairjaxError(f"{path}: {name} is not valid JSON ({e})") from None


def _json_file(path: str | Path, files: dict[str, bytes], name: str) -> Any:
    """File `name` of a folder read by `read_folder`, parsed as JSON (FairjaxError if not)."""
    if name not in files:
        raise FairjaxError(f"{path}: {name} is missing")
    return _parse_json(Path(path), name, files[name])


def _params_file(path: str | Path, files: dict[str, bytes], name: str = "params.msgpack") -> Any:
    """The parameter pytree in file `name`, finite, as jax arrays on the default device."""
    params = _restore(Path(path), files, name)
    for leaf in jax.tree.leaves(params):
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


class Extras(NamedTuple):
    """What a model folder holds besides the core fields (`CORE_FIELDS`).

    Attributes:
      info: JSON-serialisable facts, model.json's "info" (numpy scalars are made plain).
      arrays: name -> host array, or a dict of name -> array; arrays.msgpack (dtypes and
        shapes kept exactly; msgpack, never pickle).
      nested: name -> a nested `Persistable` model, or None (none of that kind); each is
        written by `save_model`'s own code into sub-folder `name/`.
    """

    info: dict
    arrays: Mapping[str, Any] = MappingProxyType({})
    nested: Mapping[str, Any] = MappingProxyType({})


class Persistable(Protocol):
    """A model that `save_model` writes and `load_model` reads: a frozen dataclass whose
    fields are `config` (a `config_cls`), optionally `encoder`, `schema` and `params` (the
    core), and others.

    Class attributes:
      method: the name recorded in the folder and checked on load.
      config_cls: the dataclass of `config`.
      nested_models: (optional) sub-folder name -> the `Persistable` class stored there.

    Hooks (optional methods):
      _extras(self) -> Extras: the non-core fields in saved form. Without it every other
        field goes to "info" under its own name (`plain`).
      _from_extras(cls, extras) -> dict: those fields' values, from the loaded `Extras`
        (nested models already loaded). Without it they are read from "info" by name (lists
        into fields annotated as tuples become tuples; a field with a default that an older
        folder lacks keeps it). FairjaxError, KeyError, TypeError and ValueError raised here
        are reported as a malformed folder.
      _param_shapes(self) -> pytree of `jax.ShapeDtypeStruct` that `params` must match
        (`jax.eval_shape` of the initialisation); required when the model has `params`.
    """

    method: ClassVar[str]
    config_cls: ClassVar[type]


def save_model(
    model: Persistable,
    path: str | Path,
    *,
    overwrite: bool = False,
    provenance: dict | None = None,
) -> None:
    """Write `model` (see `Persistable`) to folder `path`, atomically, with a manifest.

    Args:
      model: the fitted model.
      path: the model folder; an existing one is refused unless `overwrite` (and even then
        a non-empty folder that is not a fairjax model is refused).
      overwrite: replace an existing model folder (otherwise FairjaxError).
      provenance: seed and training-data fingerprint for the manifest (`provenance(...)`).
    """
    files = _files(model)
    write_folder(path, files, method=model.method, overwrite=overwrite, provenance=provenance)


def _files(model: Persistable) -> dict[str, bytes]:
    """The files of `model`'s folder (relative path -> bytes), nested models' under their
    sub-folder; the same model always gives the same bytes."""
    names = _field_names(type(model))
    if "params" in names:  # checked first: a diverged fit is the likeliest failure
        host = jax.device_get(model.params)
        if not all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(host)):
            raise FairjaxError(
                f"{model.method} parameters are not finite (NaN or infinite); not saved"
            )
        params = flax.serialization.msgpack_serialize(host)
    extras = model._extras() if hasattr(model, "_extras") else _default_extras(model)
    meta: dict[str, Any] = {"method": model.method, "format_version": FORMAT_VERSION}
    if "schema" in names:
        meta["schema"] = model.schema.to_dict()
    meta["info"] = plain(extras.info)
    if extras.arrays:
        meta["arrays"] = sorted(extras.arrays)
    if extras.nested:
        meta["nested"] = {k: None if m is None else m.method for k, m in extras.nested.items()}
    files = {"config.json": json.dumps(dataclasses.asdict(model.config), indent=2).encode()}
    if "encoder" in names:
        files["encoder.json"] = json.dumps(model.encoder.to_dict()).encode()
    files["model.json"] = json.dumps(meta, indent=2).encode()
    if "params" in names:
        files["params.msgpack"] = params
    if extras.arrays:
        arrays = {k: extras.arrays[k] for k in sorted(extras.arrays)}
        host = jax.tree.map(np.asarray, jax.device_get(arrays))
        files[ARRAYS] = flax.serialization.msgpack_serialize(host)
    for name, sub in extras.nested.items():
        if sub is not None:
            files |= {f"{name}/{k}": v for k, v in _files(sub).items()}
    return files


def load_model(model_cls: type, path: str | Path) -> Any:
    """Read and verify a `model_cls` (see `Persistable`) written by `save_model` (or by
    an older fairjax, format 1 or without a manifest), whatever device it was trained on.

    Raises:
      FairjaxError naming the folder and what is wrong: not a model folder, another
      method, a missing, edited or unreadable file, a bad config, or parameters whose
      shapes do not fit the config.
    """
    path = Path(path)
    check_method(path, model_cls.method)
    return _from_files(model_cls, path, read_folder(path))


def _field_names(model_cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(model_cls)}


def _default_extras(model: Any) -> Extras:
    fields = [f.name for f in dataclasses.fields(model) if f.name not in CORE_FIELDS]
    return Extras(info={name: getattr(model, name) for name in fields})


def _default_from_extras(model_cls: type, path: Path, extras: Extras) -> dict:
    if not isinstance(extras.info, dict):
        raise FairjaxError(f"{path}: model.json's info is not an object")
    kwargs = {}
    for f in dataclasses.fields(model_cls):
        if f.name in CORE_FIELDS:
            continue
        if f.name not in extras.info:
            if f.default is not dataclasses.MISSING:
                continue  # a field added later: older folders keep its default
            raise FairjaxError(f"{path}: model.json lacks {f.name!r}")
        value = extras.info[f.name]
        is_tuple = isinstance(value, list) and str(f.type).startswith("tuple")
        kwargs[f.name] = tuple(value) if is_tuple else value
    return kwargs


def _from_files(model_cls: type, path: Path, files: dict[str, bytes]) -> Any:
    """The one read path: a `model_cls` from its verified files (format 1 upgraded first)."""
    meta = _json_file(path, files, "model.json")
    found = _check_model_json(path, meta)
    if found != model_cls.method:
        raise FairjaxError(f"{path} holds a {found!r} model, not {model_cls.method!r}")
    if meta["format_version"] == 1:
        files, meta = _upgrade_v1(path, files, meta)
    names = _field_names(model_cls)
    listed, nested_methods = meta.get("arrays") or [], meta.get("nested") or {}
    if not isinstance(listed, list) or not isinstance(nested_methods, dict):
        raise FairjaxError(f"{path}: model.json's arrays or nested entry is malformed")
    needed = ["config.json", *(["encoder.json"] if "encoder" in names else [])]
    needed += ["params.msgpack"] if "params" in names else []
    needed += [ARRAYS] if listed else []
    missing = [name for name in needed if name not in files]
    if missing:
        what = f"a complete saved {model_cls.method} model"
        raise FairjaxError(f"{path} is not {what}: missing {missing}")
    core: dict[str, Any] = {
        "config": make_config(
            model_cls.config_cls, _json_file(path, files, "config.json"), where=str(path)
        )
    }
    try:
        if "encoder" in names:
            core["encoder"] = TabularEncoder.from_dict(_json_file(path, files, "encoder.json"))
        if "schema" in names:
            core["schema"] = Schema.from_dict(meta["schema"])
        info = meta["info"]
    except FairjaxError as e:
        raise FairjaxError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise FairjaxError(f"{path}: encoder.json or model.json is malformed ({e!r})") from None
    if "params" in names:
        core["params"] = _params_file(path, files)
    arrays = _restore(path, files, ARRAYS) if listed else {}
    if not isinstance(arrays, dict) or sorted(arrays) != sorted(map(str, listed)):
        found = sorted(arrays) if isinstance(arrays, dict) else type(arrays).__name__
        raise FairjaxError(f"{path}: {ARRAYS} holds {found}; model.json lists {sorted(listed)}")
    nested = {}
    for name, method in nested_methods.items():
        sub_cls = getattr(model_cls, "nested_models", {}).get(name)
        if sub_cls is None:
            raise FairjaxError(f"{path}: model.json names an unknown nested model {name!r}")
        prefix = f"{name}/"
        sub = {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix)}
        if method is not None and "model.json" not in sub:
            raise FairjaxError(f"{path / name} is missing (a nested {method} model)")
        nested[name] = None if method is None else _from_files(sub_cls, path / name, sub)
    extras = Extras(info=info, arrays=arrays, nested=nested)
    try:
        if hasattr(model_cls, "_from_extras"):
            fields = model_cls._from_extras(extras)
        else:
            fields = _default_from_extras(model_cls, path, extras)
        model = model_cls(**core, **fields)
        expected = model._param_shapes() if "params" in names else None
    except FairjaxError as e:
        raise FairjaxError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
    except (KeyError, TypeError, ValueError) as e:
        raise FairjaxError(f"{path}: model.json or {ARRAYS} is malformed ({e!r})") from None
    if expected is not None:
        check_param_shapes(path, model.params, expected)
    return model


def _restore(path: Path, files: dict[str, bytes], name: str) -> Any:
    """The msgpack pytree in file `name` (host numpy arrays); FairjaxError if unreadable."""
    if name not in files:
        raise FairjaxError(f"{path}: {name} is missing")
    try:
        return flax.serialization.msgpack_restore(files[name])
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        what = "parameter" if name == "params.msgpack" else "msgpack"
        raise FairjaxError(f"{path}: {name} is not a readable {what} file ({e})") from None


def frame_to_json(frame: Any) -> dict:
    """A small DataFrame as JSON ({"columns": [...], "rows": [[...], ...]}), for "info"."""
    return {"columns": list(map(str, frame.columns)), "rows": plain(frame.to_numpy().tolist())}


def frame_from_json(value: dict) -> Any:
    """Inverse of `frame_to_json` (integers int64, floats float64, text object)."""
    import pandas as pd

    return pd.DataFrame(value["rows"], columns=value["columns"])


def _upgrade_v1(path: Path, files: dict[str, bytes], meta: dict) -> tuple[dict, dict]:
    """A format-1 folder's files and model.json, rearranged into format 2 (in memory).

    Format 1 differed from 2 for three methods: "intersectional" packed its training rows
    into params.msgpack ({"generator", "rows": {x, group, label}}) and kept bandwidths in
    info; "faircausesyn" put roles, goal and rounds at model.json's top level, its local
    model in local/ and its prompt examples in examples.csv; "faircausesyn-local" kept roles
    and tokenizer in roles.json and tokenizer.json. The others only change the version.
    """
    files, meta = dict(files), {**meta, "format_version": 2}
    method = meta["method"]
    try:
        if method == "intersectional":
            packed = _restore(path, files, "params.msgpack")
            info = dict(meta["info"])
            bandwidths = np.asarray(info.pop("bandwidths"), np.float32)
            rows = {k: packed["rows"][k] for k in ("group", "label", "x")}
            files["params.msgpack"] = flax.serialization.msgpack_serialize(packed["generator"])
            files[ARRAYS] = flax.serialization.msgpack_serialize(
                {"bandwidths": bandwidths, "rows": rows}
            )
            meta = {**meta, "info": info, "arrays": ["bandwidths", "rows"]}
        elif method == "faircausesyn":
            info = {k: meta[k] for k in ("roles", "goal", "rounds")}
            if "examples.csv" in files:
                import pandas as pd

                examples = pd.read_csv(io.BytesIO(files["examples.csv"]))
                info["examples"] = frame_to_json(examples)
            local = "faircausesyn-local" if "local/model.json" in files else None
            meta = {**meta, "info": info, "nested": {"local": local}}
        elif method == "faircausesyn-local":
            info = {
                "roles": _json_file(path, files, "roles.json"),
                "tokenizer": _json_file(path, files, "tokenizer.json"),
                "history": meta["history"],
            }
            meta = {**meta, "info": info}
    except FairjaxError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FairjaxError(f"{path}: a format-1 {method} folder, malformed ({e!r})") from None
    return files, meta


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
    if model.get("format_version") not in READ_VERSIONS:
        raise FairjaxError(
            f"{path} has format version {model.get('format_version')}; "
            f"this fairjax reads versions {', '.join(map(str, READ_VERSIONS))}"
        )
    return model["method"]


def check_method(path: str | Path, method: str) -> None:
    """FairjaxError unless folder `path` holds a saved `method` model."""
    found = read_method(path)
    if found != method:
        raise FairjaxError(f"{path} holds a {found!r} model, not {method!r}")


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


def plain(value: Any) -> Any:
    """numpy / jax scalars and arrays (and containers of them) as plain Python values
    (arrays as nested lists) for JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) > 0:
        return np.asarray(value).tolist()
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value
