"""Safe writes: every file or folder fairjax produces appears whole or not at all.

A file is written to a temporary name in its own folder (same filesystem), flushed to disk
and renamed into place with `os.replace`, which is atomic: a full disk or a crash leaves the
old file (or nothing) and a stray temporary, never a half file. A folder is built as a
temporary sibling and renamed; an existing folder is kept until the new one is complete.

An existing target is refused with a `FairjaxError` unless `overwrite=True` (`--overwrite`
on the command line). `check_target` runs the same checks up front, so a command can refuse
a bad `--out` before it trains anything.

In a run over several processes (`fairjax.parallel.initialize`) every process computes the
same results, and only the main one writes them: the others run the same checks and write
into a private temporary folder that is then deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from fairjax import parallel
from fairjax.errors import FairjaxError


def check_target(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    kind: str = "file",
    arg: str = "--out",
    replaceable: Callable[[Path], str | None] | None = None,
) -> Path:
    """`path` as a `Path` if a `kind` ("file" or "folder") may be written there.

    Refused: an existing target without `overwrite`; a folder where a file would go or the
    reverse; a path below an existing file; a place that is not writable; with
    `replaceable`, an existing folder for which `replaceable(path)` returns a reason.

    Raises:
      FairjaxError naming `arg`, the path and what is wrong.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        other = "folder" if kind == "file" else "file"
        if (kind == "file" and path.is_dir()) or (kind == "folder" and not path.is_dir()):
            raise FairjaxError(f"{arg} {path} is a {other}, not a {kind}; choose another path")
        if not overwrite:
            raise FairjaxError(
                f"{arg} {path} already exists; pass --overwrite (overwrite=True) to replace it"
            )
        reason = replaceable(path) if replaceable is not None else None
        if reason:
            raise FairjaxError(f"{arg} {path} will not be replaced: {reason}")
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise FairjaxError(f"{arg} {path} is below {parent}, which is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FairjaxError(f"{arg} {path}: cannot write in {parent} (permission denied)")
    return path


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A throw-away folder for a process other than the main one of a multi-process run.

    Only process 0 checks and writes the real target. The others write to scratch and do
    not check it at write time: by then process 0 may already have written it, and the
    target would look taken. (Commands check their targets up front, before any process
    writes, so every process refuses a taken target alike.)
    """
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(scratch)


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    arg: str = "--out",
    keep_if_unchanged: bool = False,
) -> Iterator[Path]:
    """Context manager yielding a temporary path to write; renamed to `path` on success.

    The temporary file sits beside `path` and ends in the same suffix (pandas and
    matplotlib pick the format from it). On an exception it is deleted and `path` is
    untouched.

    Args:
      path: the target file; its folder is created if needed.
      overwrite: replace an existing `path`.
      arg: how error messages name the target.
      keep_if_unchanged: an existing `path` is allowed even without `overwrite` when the new
        bytes equal it (then it is left as it is, not even its time stamp changes); when they
        differ, the error is raised after writing (the old file is kept).
    """
    if not parallel.is_main_process():  # see _scratch
        with _scratch() as scratch:
            yield scratch / Path(path).name
        return
    path = check_target(path, overwrite=overwrite or keep_if_unchanged, arg=arg)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    _default_mode(tmp, 0o666)
    try:
        yield tmp
        if keep_if_unchanged and path.exists():
            if _same_bytes(tmp, path):
                tmp.unlink()
                return
            if not overwrite:
                raise FairjaxError(
                    f"{arg} {path} already exists with other contents; pass --overwrite "
                    "(overwrite=True) to replace it"
                )
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, **options) -> Path:
    """Write `data` to `path` atomically (options as `atomic_file`); returns the path."""
    with atomic_file(path, **options) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, **options) -> Path:
    """Write UTF-8 `text` to `path` atomically (options as `atomic_file`)."""
    return write_bytes(path, text.encode("utf-8"), **options)


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    arg: str = "--out",
    replaceable: Callable[[Path], str | None] | None = None,
) -> Iterator[Path]:
    """Context manager yielding an empty temporary folder; it becomes `path` on success.

    Every file in it is flushed to disk first. An existing `path` (allowed with `overwrite`,
    and if `replaceable` finds no reason against it) is moved aside, the new folder renamed
    into place and only then the old one deleted; if the rename fails the old one is put
    back. On an exception the temporary folder is deleted and `path` is untouched.
    """
    if not parallel.is_main_process():  # see _scratch
        with _scratch() as scratch:
            yield scratch
        return
    path = check_target(path, overwrite=overwrite, kind="folder", arg=arg, replaceable=replaceable)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    _default_mode(tmp, 0o777)
    try:
        yield tmp
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                _fsync(f)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / "previous")
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / "previous", path)
            raise
        finally:
            if old is not None and not (old / "previous").exists():
                shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _default_mode(path: Path, mode: int) -> None:
    """Give `path` the permissions a plain open() / mkdir() would (`mode` less the umask):
    mkstemp / mkdtemp make them private (0600 / 0700), which a user's outputs are not."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
