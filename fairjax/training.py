"""Plain gradient training shared by the generative pipelines: state, step, and the loop.

The loop runs `chunk_size` steps per compiled call inside `lax.scan`, so Python only
touches the host between chunks (for the progress bar). Batches are drawn inside the
compiled code by a pure `batch_fn(data, key) -> batch`, e.g. random rows of `data`. A step
returns `(state, metrics)`, a dict of named scalars; `run` returns the final (or best) state
and a `Record`: every metric's mean per logged window, the evaluations and the best step.
With
several devices the batch rows are split over them (`fairjax.parallel`); a batch whose rows
do not divide by the device count is refused before the first step. `run_many` trains K
independent fits of one step function as one compiled program (states stacked on a
leading axis, the step and the batch draw vmapped over it), with the same results as K
`run`s up to float reassociation.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm.auto import tqdm

from fairjax import outputs, parallel
from fairjax.errors import FairjaxError
from fairjax.meta import MetaState

LossFn = Callable[[Any, Any, jax.Array], jax.Array]  # (params, batch, key) -> []
Metrics = dict[str, jax.Array]  # name -> [] scalar, e.g. {"loss", "grad_norm"}
StepFn = Callable[[Any, Any, jax.Array], tuple[Any, Metrics]]  # (state, batch, key)


class TrainState(NamedTuple):
    """Step counter, parameters and optimizer state of plain training."""

    step: jax.Array
    params: Any
    opt_state: optax.OptState


def init_train_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
    """A `TrainState` at step 0."""
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation) -> StepFn:
    """`step(state, batch, key) -> (state, metrics)`: one optimizer step on `loss_fn`.

    `metrics` is {"loss": loss before the step [], "grad_norm": global L2 norm of its
    gradient []}.
    """

    def step(state: TrainState, batch: Any, key: jax.Array):
        loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
        return TrainState(state.step + 1, params, opt_state), metrics

    return step


def make_meta_train_step(meta_step: Callable) -> StepFn:
    """Adapt `meta.make_meta_step`'s `(state, batch_in, batch_out, key)` to the loop's
    `(state, (batch_in, batch_out), key) -> (state, metrics)` signature; `metrics` keeps all
    of the meta step's: "loss" (the MLDG objective), "loss_in" (meta-train loss), "loss_out"
    (held-out-domain loss after the inner step) and "grad_norm" (of the meta-gradient)."""

    def step(state: MetaState, batch: Any, key: jax.Array):
        return meta_step(state, *batch, key)

    return step


class Record(NamedTuple):
    """What `run` measured: the training curve of every metric and the evaluations.

    Logged windows are `log_every` consecutive steps (the last one may be shorter); each
    row of the curve is the window's mean.

    Attributes:
      steps: int64 [L] steps done at the end of each logged window (log_every,
        2 log_every, ..., the steps run).
      metrics: {name: [L]} mean of each metric of the step function over each window.
      final: {name: float} mean of each metric over the last tenth of the steps run (at
        least one step), the summary a fitted model stores.
      num_steps: steps run (fewer than asked when early stopping ended the run).
      eval_steps: int64 [E] steps done at each evaluation of `eval_fn` (empty without).
      eval_scores: float64 [E] the evaluation scores (lower is better).
      best_step: with `eval_fn`, the steps done by the returned (best) state; else None.
    """

    steps: np.ndarray
    metrics: dict[str, np.ndarray]
    final: dict[str, float]
    num_steps: int
    eval_steps: np.ndarray
    eval_scores: np.ndarray
    best_step: int | None

    def to_dict(self, digits: int = 6) -> dict:
        """JSON-ready record (the curves rounded to `digits` significant digits), as fitted
        models keep it in their history; `Record.from_dict` reads it back."""

        def r(values):
            return [float(f"{float(v):.{digits}g}") for v in values]

        return {
            "num_steps": self.num_steps,
            "steps": self.steps.tolist(),
            "metrics": {name: r(v) for name, v in self.metrics.items()},
            "final": dict(self.final),
            "eval_steps": self.eval_steps.tolist(),
            "eval_scores": r(self.eval_scores),
            "best_step": self.best_step,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        """Inverse of `to_dict` (up to its rounding)."""
        return cls(
            steps=np.asarray(d["steps"], np.int64),
            metrics={k: np.asarray(v, np.float32) for k, v in d["metrics"].items()},
            final=dict(d["final"]),
            num_steps=int(d["num_steps"]),
            eval_steps=np.asarray(d["eval_steps"], np.int64),
            eval_scores=np.asarray(d["eval_scores"], np.float64),
            best_step=d["best_step"],
        )

    def to_csv(self) -> str:
        """CSV text: a header `step,<metric>...[,eval_score]` and one line per logged
        window or evaluation, in step order (an empty cell where a row has no value)."""
        names = list(self.metrics)
        rows: dict[int, dict[str, float]] = {}
        for i, s in enumerate(self.steps.tolist()):
            rows.setdefault(s, {}).update({n: self.metrics[n][i] for n in names})
        if len(self.eval_steps):
            names.append("eval_score")
            for s, v in zip(self.eval_steps.tolist(), self.eval_scores, strict=True):
                rows.setdefault(s, {})["eval_score"] = v
        lines = [",".join(["step", *names])]
        for s in sorted(rows):
            cells = [repr(float(rows[s][n])) if n in rows[s] else "" for n in names]
            lines.append(",".join([str(s), *cells]))
        return "\n".join(lines) + "\n"


def run(
    key: jax.Array,
    state: Any,
    step_fn: StepFn,
    batch_fn: Callable[[Any, jax.Array], Any],
    data: Any = None,
    *,
    num_steps: int,
    chunk_size: int = 100,
    progress: bool = True,
    desc: str = "training",
    eval_fn: Callable[[Any], float] | None = None,
    patience: int | None = None,
    row_axis: int = 0,
    log_every: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    setting: Any = None,
    log_file: str | os.PathLike | None = None,
    fits: int | None = None,
) -> tuple[Any, Record]:
    """Run `num_steps` steps of `step_fn` on batches drawn by `batch_fn` from `data`.

    Step i uses `jax.random.fold_in(key, i)`, so a run is reproducible and independent of
    `chunk_size`. The compiled chunk is kept per (`step_fn`, `batch_fn`, `chunk_size`) for
    as long as `step_fn` lives: pass functions built once per static setting (a factory
    cached on the sizes and hyperparameters it uses) and the data as an argument, and
    later runs on data of the same shapes reuse the compiled code; a step function
    nothing else holds takes its compiled code with it.

    With several devices (`jax.devices()`), axis `row_axis` of every batch leaf is split
    over them (`parallel.constrain_rows`) and XLA partitions the step (data parallelism;
    gradients are all-reduced by the compiler); the result equals single-device training
    up to float reassociation. On one device nothing is placed.

    Args:
      key: PRNG key of the run.
      state: initial state (anything with a `step` field, e.g. `TrainState`, `MetaState`).
      step_fn: `(state, batch, key) -> (state, metrics)`, pure; `metrics` is a dict of
        named scalars (e.g. {"loss", "grad_norm"}; a GAN's players' losses), all recorded.
      batch_fn: `(data, key) -> batch`, pure (runs inside the compiled chunk).
      data: pytree of arrays passed to `batch_fn`.
      num_steps: total steps.
      chunk_size: steps per compiled call.
      progress: show a tqdm progress bar.
      desc: progress bar label.
      eval_fn: optional `state -> float`, lower is better (e.g. a validation loss), called
        after every chunk; the run then returns the best evaluated state (early stopping).
      patience: with `eval_fn`, stop after this many chunks without improvement (None:
        run every step).
      row_axis: the batch (row) axis of every leaf of a batch, e.g. 1 for
        `[n_critic, batch_size, dim]` batches.
      log_every: steps per logged window of the record (default `chunk_size`).
      checkpoint_dir: folder of the run's checkpoint, `checkpoint.npz` (None: none). It
        holds the whole loop state (state, best state, score and step, chunks since the
        best, the per-step metrics so far) and a fingerprint of the run; it is replaced
        atomically every `checkpoint_every` steps and when the run ends.
      checkpoint_every: steps between checkpoints, a multiple of `chunk_size` (default
        10 chunks).
      resume: continue from the checkpoint in `checkpoint_dir` where there is one (else
        start afresh): the result is bit-identical to an uninterrupted run. A checkpoint
        of a finished run returns its result at once.
      overwrite: with `resume=False`, start afresh over an existing checkpoint and
        `log_file` (otherwise they are refused).
      setting: JSON-serialisable facts the step depends on that the state's shapes do
        not show (hyperparameters, e.g. the config), part of the fingerprint.
      log_file: CSV file of the record (`Record.to_csv`), written atomically at every
        checkpoint and at the end.
      fits: None (one fit), or K: `key` [K], `state` and `data` are K independent fits
        stacked on a leading axis (`run_many`, which stacks and unstacks them); fit k's
        step i uses `fold_in(key[k], i)` as its own run would. No `eval_fn`,
        checkpoints or log file then.

    Returns:
      (final or, with `eval_fn`, best state, `Record` of the run); with `fits`, (the
      stacked final states, one `Record` per fit).

    Raises:
      FairjaxError: a metric is NaN or infinite (training diverged), naming `desc`, the
        metric and the step; `step_fn`'s metrics are not a dict of scalars; `chunk_size`
        or `log_every` is not a positive integer; or, before any step, the batch rows do
        not divide by the device count (the message names the batch size and the sizes
        that would); a checkpoint option is invalid, a checkpoint or log file exists
        without `resume` / `overwrite`, or the checkpoint to resume is of another run
        (the message names what differs).
    """
    chunk_size = _positive("chunk_size", chunk_size)
    log_every = chunk_size if log_every is None else _positive("log_every", log_every)
    if fits is not None:
        fits = _positive("fits", fits)
        _check_stacked_options(
            eval_fn, patience, checkpoint_dir, checkpoint_every, resume, log_file
        )
    mesh = parallel.make_mesh()
    if mesh.size > 1:
        shape_fn = batch_fn if fits is None else jax.vmap(batch_fn)
        batch = jax.eval_shape(shape_fn, data, key)
        axis = row_axis if fits is None else row_axis + 1
        parallel.check_rows(batch, mesh.size, axis=axis, what=f"training of {desc!r}")
    chunk = _compiled_chunk(step_fn, batch_fn, chunk_size, mesh, row_axis, fits)
    ckpt = _Checkpoints.open(
        checkpoint_dir, checkpoint_every, chunk_size, resume=resume, overwrite=overwrite
    )
    if log_file is not None:
        outputs.check_target(log_file, overwrite=resume or overwrite, arg="log_file")
    loop = _Loop(state, state, np.inf, 0, 0, 0, False, {}, [])  # a fresh start
    if ckpt is not None:
        fingerprint = _fingerprint(
            key, state, batch_fn, data, num_steps, chunk_size, eval_fn, patience, setting
        )
        if resume:
            loop = ckpt.load(fingerprint, state) or loop

    def record() -> Record:
        values = {name: np.concatenate(v) for name, v in loop.values.items()}
        best_step = loop.best_step if eval_fn is not None else None
        if fits is not None:  # values [steps, K]: one record per fit
            per_fit = [{name: v[:, k] for name, v in values.items()} for k in range(fits)]
            return [_record(v, log_every, loop.evals, best_step) for v in per_fit]
        return _record(values, log_every, loop.evals, best_step)

    state, best, best_score, best_step, since_best = loop[:5]
    values, evals = loop.values, loop.evals
    with tqdm(
        total=num_steps, initial=loop.step, desc=desc, disable=not progress, leave=False
    ) as bar:
        for start in range(loop.step, num_steps if not loop.done else 0, chunk_size):
            n = min(chunk_size, num_steps - start)
            # mask and trim on the host: no small device programs compiled per chunk length
            state, metrics = chunk(state, data, key, start, np.arange(chunk_size) < n)
            metrics = {name: np.asarray(v)[:n] for name, v in metrics.items()}
            if fits is None:
                _check_finite(metrics, desc, start, num_steps)
            for k in range(fits or 0):
                fit_metrics = {name: v[:, k] for name, v in metrics.items()}
                _check_finite(fit_metrics, f"{desc} (fit {k})", start, num_steps)
            for name, v in metrics.items():
                values.setdefault(name, []).append(v)
            bar.set_postfix({name: f"{float(v.mean()):.4f}" for name, v in metrics.items()})
            bar.update(n)
            stop = False
            if eval_fn is not None:
                score = float(eval_fn(state))
                evals.append((start + n, score))
                if score < best_score:
                    best, best_score, best_step, since_best = state, score, start + n, 0
                else:
                    since_best += 1
                    stop = patience is not None and since_best >= patience
            done = stop or start + n == num_steps
            kept = best if eval_fn is not None else state
            loop = _Loop(
                state, kept, best_score, best_step, since_best, start + n, done, values, evals
            )
            if ckpt is not None and (done or (start + n) % ckpt.every == 0):
                ckpt.save(loop, fingerprint)
                if log_file is not None and not done:
                    outputs.write_text(log_file, record().to_csv(), overwrite=True)
            if stop:
                break
    result = record()
    if log_file is not None:
        outputs.write_text(log_file, result.to_csv(), overwrite=True, arg="log_file")
    return (loop.state if eval_fn is None else loop.best), result


def run_many(
    keys: Any,
    states: list,
    step_fn: StepFn,
    batch_fn: Callable[[Any, jax.Array], Any],
    data: list,
    *,
    num_steps: int,
    chunk_size: int = 100,
    progress: bool = True,
    desc: str = "training",
    row_axis: int = 0,
    log_every: int | None = None,
) -> tuple[list, list[Record]]:
    """Train K independent fits of `step_fn` together, as one compiled program.

    The K states and data are stacked on a new leading axis and `run` vmaps the batch
    draw and the step over it inside its `lax.scan` chunks (`run(..., fits=K)`): fit k
    equals `run(keys[k], states[k], step_fn, batch_fn, data[k], ...)` up to float
    reassociation (the same batches and noise: step i of fit k uses
    `fold_in(keys[k], i)`); a single fit is `run` itself. Fits on row subsets of
    different sizes share the program when their data are padded to common shapes and
    `batch_fn` draws only from each fit's own rows (e.g. rows `floor(u * n_k)`, with n_k
    an array of the data).

    Args:
      keys: K PRNG keys (a sequence, or a key array [K]).
      states: K initial states of identical structure and shapes.
      step_fn, batch_fn, num_steps, chunk_size, progress, desc, row_axis, log_every: as
        for `run` (`row_axis` of one fit's batch).
      data: K pytrees of identical structure and shapes, one per fit.

    Returns:
      (K final states, K `Record`s).

    Raises:
      FairjaxError: `keys`, `states` and `data` differ in length or are empty, or the
        states or data of two fits differ in structure or shape (the message names the
        fit and the leaf); as for `run` (a diverged fit is named by its index).
    """
    keys = list(keys)
    k = len(keys)
    if k == 0 or len(states) != k or len(data) != k:
        raise FairjaxError(
            "run_many needs one key, state and data per fit, at least one fit; got "
            f"{k} keys, {len(states)} states, {len(data)} data"
        )
    for what, trees in (("state", states), ("data", data)):
        _check_same_shapes(what, trees)
    options = {
        "num_steps": num_steps,
        "chunk_size": chunk_size,
        "progress": progress,
        "desc": desc,
        "row_axis": row_axis,
        "log_every": log_every,
    }
    if k == 1:  # one fit: `run` itself (a vmap over one fit only adds batched-matmul costs)
        state, record = run(keys[0], states[0], step_fn, batch_fn, data[0], **options)
        return [state], [record]
    stacked_state, stacked_data = (
        jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees) for trees in (states, data)
    )
    final, records = run(
        jnp.stack(keys),
        stacked_state,
        step_fn,
        batch_fn,
        stacked_data,
        fits=k,
        **options,
    )
    return [jax.tree.map(lambda a, i=i: a[i], final) for i in range(k)], records


def _check_same_shapes(what: str, trees: list) -> None:
    """FairjaxError naming the first fit whose `what` differs from fit 0's in structure,
    shape or dtype."""
    ref, ref_def = jax.tree.flatten_with_path(trees[0])[0], jax.tree.structure(trees[0])
    for i, tree in enumerate(trees[1:], start=1):
        if jax.tree.structure(tree) != ref_def:
            raise FairjaxError(
                f"the {what} of fit {i} has another structure than fit 0's; the fits of "
                "run_many must share one: "
                f"{jax.tree.structure(tree)} vs {ref_def}"
            )
        for (path, a), b in zip(ref, jax.tree.leaves(tree), strict=True):
            sa, sb = (np.shape(a), jnp.result_type(a)), (np.shape(b), jnp.result_type(b))
            if sa != sb:
                raise FairjaxError(
                    f"the {what} of fit {i} differs from fit 0's at "
                    f"{jax.tree_util.keystr(path) or 'its root'}: shape {sb[0]} {sb[1]} vs "
                    f"{sa[0]} {sa[1]}; the fits of run_many must have the same shapes (pad "
                    "the data to common lengths)"
                )


def _check_stacked_options(eval_fn, patience, checkpoint_dir, checkpoint_every, resume, log_file):
    given = {
        "eval_fn": eval_fn is not None,
        "patience": patience is not None,
        "checkpoint_dir": checkpoint_dir is not None,
        "checkpoint_every": checkpoint_every is not None,
        "resume": bool(resume),
        "log_file": log_file is not None,
    }
    given = [name for name, on in given.items() if on]
    if given:
        raise FairjaxError(
            f"stacked fits (run_many, fits=K) take no {', '.join(given)}: they train every "
            "fit for num_steps without evaluations, checkpoints or log files"
        )


class TrainFiles(NamedTuple):
    """Where a fit keeps the checkpoints and training logs of its networks (each trained by
    one `run`): `options(name)` gives network `name`'s keyword arguments of `run`.

    Attributes:
      checkpoint_dir: folder of the checkpoints, one subfolder per network (None: none).
      checkpoint_every: steps between checkpoints, a multiple of the networks' chunk size
        (None: every 10 chunks).
      resume: continue every network from its checkpoint where there is one.
      log_dir: folder of the records, `<network>.csv` each (None: none).
      overwrite: start afresh over existing checkpoints and logs.
    """

    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    log_dir: str | os.PathLike | None = None
    overwrite: bool = False

    def options(self, name: str) -> dict:
        """`run` keyword arguments for the network called `name` (a file name)."""
        ckpt = None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / name
        log = None if self.log_dir is None else Path(self.log_dir) / f"{name}.csv"
        return {
            "checkpoint_dir": ckpt,
            "checkpoint_every": self.checkpoint_every,
            "resume": self.resume,
            "overwrite": self.overwrite,
            "log_file": log,
        }


class _Loop(NamedTuple):
    """The loop state of `run` that a checkpoint keeps."""

    state: Any
    best: Any
    best_score: float
    best_step: int
    since_best: int
    step: int  # steps done
    done: bool  # the run ended (all steps, or early stopping)
    values: dict[str, list[np.ndarray]]  # per-step metrics, one array per chunk
    evals: list[tuple[int, float]]  # (steps done, score) per evaluation


CHECKPOINT = "checkpoint.npz"
_CHECKPOINT_VERSION = 1


class _Checkpoints(NamedTuple):
    """The checkpoint file of one run and how often it is written."""

    path: Path
    every: int

    @classmethod
    def open(
        cls, folder, every, chunk_size: int, *, resume: bool, overwrite: bool
    ) -> _Checkpoints | None:
        if folder is None:
            if resume or every is not None:
                raise FairjaxError(
                    "resume and checkpoint_every need checkpoint_dir (the checkpoint folder)"
                )
            return None
        every = 10 * chunk_size if every is None else _positive("checkpoint_every", every)
        if every % chunk_size:
            raise FairjaxError(
                f"checkpoint_every must be a multiple of the chunk size {chunk_size} "
                f"(checkpoints are taken between compiled chunks); got {every}"
            )
        folder = outputs.check_target(folder, overwrite=True, kind="folder", arg="checkpoint_dir")
        path = folder / CHECKPOINT
        if path.exists() and not (resume or overwrite):
            raise FairjaxError(
                f"checkpoint_dir {folder} holds a checkpoint; pass resume=True (--resume) to "
                "continue that run, or overwrite=True (--overwrite) to start afresh"
            )
        return cls(path, every)

    def save(self, loop: _Loop, fingerprint: dict) -> None:
        """Write the loop state atomically (the previous checkpoint stays until it is whole)."""
        arrays = {f"state/{i}": a for i, a in enumerate(_host_leaves(loop.state))}
        if loop.best is not loop.state:
            arrays.update({f"best/{i}": a for i, a in enumerate(_host_leaves(loop.best))})
        for name, v in loop.values.items():
            arrays[f"metric/{name}"] = np.concatenate(v)
        info = {
            "version": _CHECKPOINT_VERSION,
            "fingerprint": fingerprint,
            "step": loop.step,
            "done": loop.done,
            "best_score": loop.best_score,  # json writes inf and nan as Infinity, NaN
            "best_step": loop.best_step,
            "since_best": loop.since_best,
            "best_is_state": loop.best is loop.state,
            "evals": loop.evals,
        }
        arrays["info"] = np.asarray(json.dumps(info))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        outputs.write_bytes(self.path, buffer.getvalue(), overwrite=True, arg="checkpoint_dir")

    def load(self, fingerprint: dict, target: Any) -> _Loop | None:
        """The loop state of the checkpoint (None if there is none), restored into the
        structure of `target`; FairjaxError if it is unreadable or of another run."""
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {name: f[name] for name in f.files}
            info = json.loads(str(arrays.pop("info")))
            version = info["version"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FairjaxError(f"{self.path} is not a readable checkpoint ({e})") from None
        if version != _CHECKPOINT_VERSION:
            raise FairjaxError(
                f"{self.path} has checkpoint version {version}; this fairjax reads "
                f"version {_CHECKPOINT_VERSION}"
            )
        diffs = _differences(info["fingerprint"], fingerprint)
        if diffs:
            raise FairjaxError(
                f"{self.path} is a checkpoint of another run ({'; '.join(diffs)}); resume "
                "continues only the run that wrote it: use its settings, or start afresh "
                "with overwrite=True (--overwrite) or another checkpoint folder"
            )
        state = _restore(target, arrays, "state")
        best = state if info["best_is_state"] else _restore(target, arrays, "best")
        values = {
            name.split("/", 1)[1]: [a] for name, a in arrays.items() if name.startswith("metric/")
        }
        evals = [(int(s), float(v)) for s, v in info["evals"]]
        score = float(info["best_score"])
        return _Loop(
            state, best, score, info["best_step"], info["since_best"], info["step"],
            info["done"], values, evals,
        )  # fmt: skip


def _host_leaves(tree: Any) -> list[np.ndarray]:
    """The leaves of `tree` as host numpy arrays (PRNG keys as their key data)."""
    out = []
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key):
            raise FairjaxError("checkpoints cannot hold PRNG keys in the training state")
        out.append(np.asarray(jax.device_get(leaf)))
    return out


def _restore(target: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    leaves, treedef = jax.tree.flatten(target)
    return treedef.unflatten([jnp.asarray(arrays[f"{prefix}/{i}"]) for i in range(len(leaves))])


def _digest(tree: Any) -> str:
    """SHA-256 (16 hex digits) of the shapes, dtypes and bytes of a pytree's leaves."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        a = np.ascontiguousarray(np.asarray(jax.device_get(leaf)))
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _fingerprint(key, state, batch_fn, data, num_steps, chunk_size, eval_fn, patience, setting):
    """What must equal between a run and the checkpoint it resumes (JSON-ready)."""
    batch = jax.eval_shape(batch_fn, data, key)
    fingerprint = {
        "num_steps": int(num_steps),
        "chunk_size": chunk_size,
        "eval_fn": eval_fn is not None,
        "patience": patience,
        "state structure": str(jax.tree.structure(state)),
        "state shapes": [
            [list(np.shape(a)), str(jnp.result_type(a))] for a in jax.tree.leaves(state)
        ],
        "batch shapes": [[list(b.shape), str(b.dtype)] for b in jax.tree.leaves(batch)],
        "initial state digest": _digest(state),
        "key digest": _digest(key),
        "data digest": _digest(data),
        "setting": setting,
    }
    try:
        return json.loads(json.dumps(fingerprint, sort_keys=True))
    except TypeError as e:
        raise FairjaxError(f"setting must be JSON-serialisable ({e})") from None


def _differences(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """What differs between two fingerprints (or dicts within them, e.g. a config)."""
    out = []
    for name in sorted(set(saved) | set(now)):
        a, b = saved.get(name), now.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{name}.")
        elif a != b:
            short = max(len(repr(a)), len(repr(b))) <= 60 and "digest" not in name
            what = f"{prefix}{name}"
            out.append(f"{what}: {a!r} there, {b!r} here" if short else f"{what} differs")
    return out


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise FairjaxError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _record(
    values: dict[str, np.ndarray], log_every: int, evals: list, best_step: int | None
) -> Record:
    """The `Record` of per-step metric values {name: [steps run]}."""
    n = len(next(iter(values.values()))) if values else 0
    ends = [*range(log_every, n, log_every), n] if n else []
    starts = [0, *ends[:-1]]
    return Record(
        steps=np.asarray(ends, np.int64),
        metrics={
            name: np.asarray([v[a:b].mean() for a, b in zip(starts, ends, strict=True)], v.dtype)
            for name, v in values.items()
        },
        final={name: float(np.mean(v[-max(1, n // 10) :])) for name, v in values.items()},
        num_steps=n,
        eval_steps=np.asarray([s for s, _ in evals], np.int64),
        eval_scores=np.asarray([v for _, v in evals], np.float64),
        best_step=best_step,
    )


def _check_finite(metrics: dict[str, np.ndarray], desc: str, start: int, num_steps: int) -> None:
    """FairjaxError naming the network (`desc`), the first step at which a metric is not
    finite and its value: training diverged, and its parameters must not be used or saved."""
    bad = {name: np.flatnonzero(~np.isfinite(v)) for name, v in metrics.items()}
    bad = {name: i[0] for name, i in bad.items() if len(i)}
    if bad:
        i = min(bad.values())
        what = ", ".join(f"{name} is {float(metrics[name][i])}" for name in bad if bad[name] == i)
        raise FairjaxError(
            f"training of {desc!r} diverged: {what} at step {start + i + 1} of {num_steps}; "
            "its parameters are unusable (try a smaller learning rate or another seed)"
        )


# step_fn -> {(batch_fn, chunk_size, mesh, row_axis): jitted chunk}. Weak keys: an entry lives
# as long as its step function, and the chunk holds the step only weakly, so a fresh
# closure passed once does not keep its executables alive.
_CHUNKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_chunk(
    step_fn: StepFn,
    batch_fn: Callable,
    chunk_size: int,
    mesh: Mesh,
    row_axis: int,
    fits: int | None = None,
):
    """Jitted `chunk(state, data, key, start, mask) -> (state, {name: [chunk_size]})`, one
    per (`step_fn`, `batch_fn`, `chunk_size`, `mesh`, `row_axis`, `fits`) while `step_fn`
    lives; with `fits`, vmapped over the leading fit axis of state, data and key (metrics
    [chunk_size, K])."""
    args = (batch_fn, chunk_size, mesh, row_axis, fits)
    try:
        per_step = _CHUNKS.setdefault(step_fn, {})
    except TypeError:  # not weak-referenceable (e.g. a builtin): compile for this run only
        return _make_chunk(lambda: step_fn, *args)
    if args not in per_step:
        per_step[args] = _make_chunk(weakref.ref(step_fn), *args)
    return per_step[args]


def _make_chunk(
    step_ref: Callable[[], StepFn],
    batch_fn: Callable,
    chunk_size: int,
    mesh: Mesh,
    row_axis: int,
    fits: int | None = None,
):
    def shard(batch):
        return parallel.constrain_rows(batch, mesh, axis=row_axis)

    @jax.jit
    def chunk(state, data, key, start, mask):
        step_fn = step_ref()  # alive: traced only inside `run`, which holds it

        def one_fit(state, data, key, i):
            batch_key, step_key = jax.random.split(jax.random.fold_in(key, i))
            new_state, metrics = step_fn(state, shard(batch_fn(data, batch_key)), step_key)
            _check_metrics(metrics)
            return new_state, metrics

        if fits is not None:  # the same per-fit computation, vmapped over the fit axis
            one_fit = jax.vmap(one_fit, in_axes=(0, 0, 0, None))

        def body(state, inputs):
            i, active = inputs
            new_state, metrics = one_fit(state, data, key, i)
            # The last chunk may be partial: inactive steps leave the state untouched.
            state = jax.tree.map(lambda a, b: jnp.where(active, a, b), new_state, state)
            return state, metrics

        return jax.lax.scan(body, state, (start + jnp.arange(chunk_size), mask))

    return chunk


def _check_metrics(metrics: Any) -> None:
    """FairjaxError (at trace time) unless a step's metrics are a dict of named scalars."""
    ok = isinstance(metrics, dict) and all(
        isinstance(k, str) and jnp.shape(v) == () for k, v in metrics.items()
    )
    if not ok or not metrics:
        shapes = jax.tree.map(jnp.shape, metrics)
        raise FairjaxError(
            "a training step must return (state, metrics) with metrics a non-empty dict of "
            f"named scalars, e.g. {{'loss': loss}}; got {shapes}"
        )


def make_holdout_eval(loss_fn: LossFn, data: Any, key: jax.Array) -> Callable[[Any], float]:
    """`eval_fn(state) -> float` for `run`: `loss_fn` on held-out `data` with a fixed `key`.

    A stochastic loss (e.g. DSM, whose times and noises come from the key) evaluated with
    the same key at every call sees the same times and noises, so successive evaluations
    differ only by the parameters: a deterministic, comparable held-out criterion.

    Args:
      loss_fn: `(params, data, key) -> []`, e.g. `sde.make_dsm_loss(...)`.
      data: the held-out rows, in the form `loss_fn` takes (all of them in one batch).
      key: the fixed PRNG key of the criterion.

    Returns:
      `eval_fn(state) -> float`, lower is better (`state.params` is evaluated).
    """
    loss = jax.jit(loss_fn)
    return lambda state: float(loss(state.params, data, key))


def stopping_options(loss_fn: LossFn, held: Any, key: jax.Array, config: Any) -> dict:
    """`run`'s keyword arguments for early stopping on the held-out rows `held`: the
    criterion `make_holdout_eval(loss_fn, held, key)` every `config.eval_every` steps,
    stopping after `config.patience` evaluations without improvement."""
    return {
        "eval_fn": make_holdout_eval(loss_fn, held, key),
        "patience": config.patience,
        "chunk_size": config.eval_every,
    }


def check_stopping(holdout: Any, eval_every: Any, patience: Any) -> None:
    """Validate a config's early-stopping fields (`holdout` share of rows in [0, 1),
    `eval_every` steps and `patience` evaluations, positive integers)."""
    if isinstance(holdout, bool) or not 0.0 <= float(holdout) < 1.0:
        raise FairjaxError(f"holdout must be a share of rows in [0, 1); got {holdout!r}")
    for name, value in (("eval_every", eval_every), ("patience", patience)):
        if isinstance(value, bool) or int(value) != value or int(value) < 1:
            raise FairjaxError(f"{name} must be a positive integer; got {value!r}")
