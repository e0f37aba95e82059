"""Device placement, in one place: the 1-D mesh, row sharding, replication, the divisibility rule.

fairjax parallelises over rows only (data parallelism). The pipelines' edges use this module:
``training.run`` shards each batch's rows over the mesh with a sharding constraint (XLA
all-reduces the gradients), and the samplers' entry points run the row-wise solver under
``jax.shard_map`` (:func:`shard_rows`). The math modules (``sde``, ``sampling``'s solvers,
``guidance``, ``meta``, ``mmd``) are per-example functions that know nothing of devices.

The divisibility rule. A sampler's rows are independent (row ``i`` draws everything from its
own key), so :func:`shard_rows` pads them to a multiple of the device count and trims the
result: any ``n`` works and the rows are unchanged. A training batch cannot be padded without
changing the loss, so its rows must divide by the device count; :func:`check_rows` says so
before training starts, naming the batch size, the device count and the nearest valid sizes.
On one device every function here is the identity or a no-op.

Several processes (hosts). :func:`initialize` joins JAX's own multi-controller runtime
(``jax.distributed``): every process runs the same program, ``jax.devices()`` then lists the
devices of all processes, and the same mesh and shardings span them. Every process holds the
full data; each batch's rows are split over the global mesh (so each process computes its
devices' share and the gradients are all-reduced across processes), parameters come out
replicated on every process, and :func:`shard_rows` returns its rows replicated too, so every
process can read them. Only the main process (:func:`is_main_process`) should write files.

Row buckets. Tables and sampling requests are padded to power-of-two row counts
(:func:`bucket_rows`, :func:`zero_pad_rows`) so that nearby sizes share compiled code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fairjax.errors import FairjaxError

__all__ = [
    "ROWS",
    "bucket_rows",
    "check_rows",
    "constrain_rows",
    "initialize",
    "is_main_process",
    "make_mesh",
    "padded_rows",
    "replicated",
    "row_sharding",
    "shard_rows",
    "zero_pad_rows",
]

ROWS = "rows"  # the one mesh axis


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> int:
    """Join a multi-process run (``jax.distributed.initialize``); call before any JAX work.

    With no arguments the cluster is detected from the environment (Slurm, Open MPI, Cloud
    TPU; see JAX's documentation); otherwise give all three. On CPU the collectives across
    processes use Gloo (``jax_cpu_collectives_implementation``).

    Args:
        coordinator: ``"host:port"`` of process 0.
        num_processes: number of processes, >= 1.
        process_id: this process's index in ``[0, num_processes)``.

    Returns:
        This process's index (``jax.process_index()``).

    Raises:
        FairjaxError: only some of the three arguments are given, or they are out of range.
    """
    given = [a is not None for a in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise FairjaxError(
            "give coordinator, num_processes and process_id together, or none of them (to "
            f"detect the cluster); got coordinator={coordinator!r}, "
            f"num_processes={num_processes!r}, process_id={process_id!r}."
        )
    if all(given) and not (
        isinstance(num_processes, int) and num_processes >= 1 and 0 <= process_id < num_processes
    ):
        raise FairjaxError(
            f"need num_processes >= 1 and 0 <= process_id < num_processes; got "
            f"num_processes={num_processes!r}, process_id={process_id!r}."
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return jax.process_index()


def is_main_process() -> bool:
    """True in process 0 (and always in a single-process run): the one that writes files."""
    return jax.process_index() == 0


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis ``"rows"`` over ``devices`` (default ``jax.devices()``).

    Args:
        devices: distinct devices to use, in order.

    Returns:
        The ``Mesh``; ``mesh.size`` is the device count.

    Raises:
        FairjaxError: ``devices`` is empty or names a device twice.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise FairjaxError("devices must name at least one device, got an empty sequence.")
    if len(set(devices)) != len(devices):
        raise FairjaxError(f"devices must be distinct, got {devices}.")
    return Mesh(np.array(devices), (ROWS,))


def row_sharding(mesh: Mesh, *, axis: int = 0) -> NamedSharding:
    """Sharding that splits array axis ``axis`` (the rows) over the mesh, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), ROWS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a whole copy of the array on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def padded_rows(n: int, num_devices: int) -> int:
    """The smallest multiple of ``num_devices`` that is ``>= n`` (rows after padding)."""
    return -(-n // num_devices) * num_devices


def bucket_rows(n: int, *, minimum: int) -> int:
    """Rows of a compiled shape for ``n`` rows: the power of two ``>= max(n, minimum)``.

    Padding training tables and sampling chunks to these sizes lets nearby ``n`` share
    compiled code (at most twice the rows, and none below ``minimum``).
    """
    return max(int(minimum), 1 << (int(n) - 1).bit_length())


def zero_pad_rows(a: np.ndarray, *, minimum: int = 1024) -> np.ndarray:
    """``a`` [n, ...] followed by zero rows up to ``bucket_rows(n, minimum=minimum)`` rows,
    same dtype; the padding rows are for shapes only (training never draws them)."""
    out = np.zeros((bucket_rows(len(a), minimum=minimum), *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


def check_rows(batch: Any, num_devices: int, *, axis: int = 0, what: str = "training") -> None:
    """Raise unless every leaf's row axis divides evenly over ``num_devices``.

    Args:
        batch: pytree of arrays or ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``).
        num_devices: devices the rows are split over.
        axis: the row axis of every leaf.
        what: what the batch is for, named in the message (e.g. the network being trained).

    Raises:
        FairjaxError: a leaf has no axis ``axis``, or its rows do not divide; the message names
            the batch size, the device count and the nearest batch sizes that would.
    """
    if num_devices == 1:
        return
    rows = []
    for leaf in jax.tree.leaves(batch):
        if len(leaf.shape) <= axis:
            raise FairjaxError(
                f"{what}: every batch array needs a row axis {axis} to shard over devices; "
                f"got an array of shape {tuple(leaf.shape)}."
            )
        rows.append(leaf.shape[axis])
    bad = [r for r in rows if r % num_devices]
    if bad:
        # The smallest offender is the per-step batch size (a meta-learning batch also
        # holds multiples of it), so that is the number the user should change.
        n = min(bad)
        lower, upper = (n // num_devices) * num_devices, padded_rows(n, num_devices)
        options = f"{lower} or {upper}" if lower else f"{upper}"
        raise FairjaxError(
            f"{what}: batch size {n} does not divide over {num_devices} devices; choose a "
            f"batch size divisible by {num_devices} (e.g. {options}), or make fewer devices "
            "visible (e.g. CUDA_VISIBLE_DEVICES=0)."
        )


def constrain_rows(batch: Any, mesh: Mesh, *, axis: int = 0) -> Any:
    """Inside ``jit``: ask XLA to split every leaf's row axis over the mesh (identity for one
    device). Check the rows with :func:`check_rows` first."""
    if mesh.size == 1:
        return batch
    sharding = row_sharding(mesh, axis=axis)
    return jax.tree.map(lambda leaf: jax.lax.with_sharding_constraint(leaf, sharding), batch)


def _pad_rows(tree: Any, n: int, n_pad: int) -> Any:
    # Repeat the last row: padded rows then hold valid inputs (labels in range, finite x_T).
    idx = np.minimum(np.arange(n_pad), n - 1)
    return jax.tree.map(lambda a: a[idx], tree)


def shard_rows(fn: Callable[..., jax.Array], mesh: Mesh) -> Callable[..., jax.Array]:
    """Run a row-wise function with its rows split over the mesh; returns a jitted function.

    ``fn(*args) -> out[n, ...]`` must treat rows independently (a sampler from
    :mod:`fairjax.sampling` called with per-row keys). Every leaf of ``args`` (``None``
    allowed) has a leading axis of ``n`` rows; they are padded to a multiple of the device
    count by repeating the last row, split with ``jax.shard_map``, and the padding is trimmed.
    Row ``i`` therefore gives the same result as ``jax.jit(fn)`` on one device, up to float
    rounding, for any ``n``. On a mesh spanning several processes the result is replicated
    on every device, so that every process can read all rows.

    Args:
        fn: ``(*args) -> [n, ...]``, row-wise.
        mesh: from :func:`make_mesh`.

    Returns:
        ``sharded(*args) -> [n, ...]``, jitted.
    """
    spec = PartitionSpec(ROWS)

    @functools.partial(jax.jit, out_shardings=replicated(mesh) if mesh.is_multi_process else None)
    def sharded(*args: Any) -> jax.Array:
        n = jax.tree.leaves(args)[0].shape[0]
        padded = _pad_rows(args, n, padded_rows(n, mesh.size))
        body = jax.shard_map(
            fn, mesh=mesh, in_specs=(spec,) * len(args), out_specs=spec, check_vma=False
        )
        return body(*padded)[:n]

    return sharded
