"""Downstream binary classifiers for "train on synthetic, test on real" evaluation.

Plain JAX + optax: a classifier is a `Classifier(fit, predict_proba)` pair of pure
functions, and its parameters are a plain pytree, a list of `(W [d_in, d_out], b [d_out])`
layers with ReLU between them. Logistic regression is the zero-hidden-layer case, so the
two models share one forward pass.

- `make_logistic_regression`: full-batch L-BFGS (optax.lbfgs with a zoom line search)
  inside `lax.while_loop`, run to a gradient-norm tolerance, i.e. to the L2-regularised
  optimum. The objective is the (weighted) *mean* log-loss plus `l2 / 2 * ||w||^2` (the
  intercept is not penalised), which is exactly scikit-learn's
  `LogisticRegression(C=1 / (l2 * sum(sample_weight)))` (`C = 1 / (l2 * n)` unweighted).
- `make_mlp_classifier`: Adam (AdamW when `weight_decay > 0`) on minibatches of rows drawn
  with replacement, trained by `fairjax.training.run` with one compiled chunk per epoch
  (ceil(n / batch_size) steps), and early stopping on a stratified validation split
  (patience counted in epochs) that returns the best validation parameters.
  `make_mlp_trainer` is the same fit returning its training history as well.
- `make_hist_gradient_boosting` ("hgb"): scikit-learn's `HistGradientBoostingClassifier`
  behind the same interface, for comparability with published numbers. Its params are the
  fitted scikit-learn estimator, **not a pytree**: they cannot be jitted, vmapped,
  differentiated or saved with `fairjax.persist`, and its `predict_proba` runs on the CPU
  in numpy.

`fit` validates its inputs with `FairjaxError` at the boundary and then calls jitted code
compiled once per factory and input shape; `predict_proba` is pure and may be jitted or
vmapped by the caller.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import training
from fairjax.errors import FairjaxError

Params = list  # list[tuple[jax.Array, jax.Array]]: [(W [d_in, d_out], b [d_out]), ...]


class Classifier(NamedTuple):
    """A binary classifier as a pair of pure functions.

    Attributes:
      fit: `fit(key, X [n, d] float, y [n] int in {0, 1}, *, sample_weight=None [n])
        -> params`, a list of `(W, b)` layers. Validates its inputs (FairjaxError).
      predict_proba: `predict_proba(params, X [n, d]) -> [n]` float P(y = 1 | x).
    """

    fit: Callable[..., Params]
    predict_proba: Callable[[Params, jax.Array], jax.Array]


class MLPFitResult(NamedTuple):
    """What `make_mlp_trainer`'s train function returns.

    Attributes:
      params: the parameters of the epoch with the lowest validation loss (the last epoch's
        when `val_fraction == 0`); this is what `Classifier.fit` returns.
      last_params: the parameters after the last epoch that ran.
      train_loss: [epochs_run] mean minibatch loss of each epoch.
      val_loss: [epochs_run] validation loss after each epoch (empty when no validation).
      best_epoch: index into `val_loss` of `params` (the last epoch without validation).
      train_index: [n_train] row indices of X used for training.
      val_index: [n_val] row indices of X held out for early stopping.
      record: the `fairjax.training.Record` of the run (per-epoch loss and gradient
        norm; its eval scores are the validation losses, inf where an epoch did not
        improve by `min_delta`).
    """

    params: Params
    last_params: Params
    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    train_index: np.ndarray
    val_index: np.ndarray
    record: training.Record


# ----------------------------------------------------------------------------- model


def logits_fn(params: Params, x: jax.Array) -> jax.Array:
    """Logit of P(y = 1) for an MLP (or, with one layer, a linear model).

    Args:
      params: list of `(W [d_in, d_out], b [d_out])` layers; the last has d_out = 1.
      x: [..., d] features.

    Returns:
      [...] logits.
    """
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[..., 0]


def predict_proba(params: Params, x: jax.Array) -> jax.Array:
    """P(y = 1 | x) = sigmoid(logits_fn(params, x)); [..., d] -> [...]."""
    return jax.nn.sigmoid(logits_fn(params, x))


def _weighted_bce(params: Params, x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    """Weighted mean binary cross-entropy; x [n, d], y [n] float, w [n] >= 0 -> []."""
    loss = optax.sigmoid_binary_cross_entropy(logits_fn(params, x), y)
    # max() guards a minibatch whose weights are all zero (user weights of 0).
    return jnp.sum(w * loss) / jnp.maximum(jnp.sum(w), 1e-12)


def _batch_bce(params: Params, batch: tuple, key: jax.Array) -> jax.Array:
    """`_weighted_bce` as a `training` loss: batch = (x [b, d], y [b], w [b]); key unused."""
    del key
    return _weighted_bce(params, *batch)


@functools.lru_cache(maxsize=32)
def random_rows(batch_size: int) -> Callable[[Any, jax.Array], Any]:
    """`batch_fn(data, key)` for `training.run`: `batch_size` rows drawn uniformly with
    replacement, the same rows of every leaf of `data` (a pytree of [n, ...] arrays).

    Cached per size, so trainers with one batch size share compiled code.
    """

    def batch_fn(data: Any, key: jax.Array) -> Any:
        n = jax.tree.leaves(data)[0].shape[0]
        # floor(U n) is cheaper to compile than randint; a gather clamps the rare n.
        rows = jnp.floor(jax.random.uniform(key, (batch_size,)) * n).astype(jnp.int32)
        return jax.tree.map(lambda a: a[rows], data)

    return batch_fn


def predict(clf: Classifier, params: Params, X: Any, threshold: float = 0.5) -> np.ndarray:
    """Hard 0/1 predictions `predict_proba(params, X) >= threshold`.

    Args:
      clf: the classifier whose `predict_proba` to use.
      params: parameters returned by `clf.fit`.
      X: [n, d] features.
      threshold: decision threshold on P(y = 1), in [0, 1].

    Returns:
      [n] int64 numpy array of 0/1 predictions.
    """
    x = _check_x(X, "X")
    if not 0.0 <= float(threshold) <= 1.0:
        raise FairjaxError(f"threshold must lie in [0, 1], got {threshold!r}.")
    proba = np.asarray(clf.predict_proba(params, jnp.asarray(x)))
    return (proba >= threshold).astype(np.int64)


# ------------------------------------------------------------------------ validation


def _check_x(X: Any, name: str) -> np.ndarray:
    try:
        x = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise FairjaxError(f"{name} must be a numeric array of shape [n, d]: {e}") from e
    if x.ndim != 2:
        raise FairjaxError(f"{name} must have shape [n, d], got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise FairjaxError(f"{name} must have at least one row and one column, got {x.shape}.")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise FairjaxError(
            f"{name} must be finite; found {x[tuple(bad)]} at row {bad[0]}, column {bad[1]}."
        )
    return x


def _check_fit_inputs(
    X: Any, y: Any, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float32 X [n, d], float32 y [n] in {0, 1} and float32 weights [n]."""
    x = _check_x(X, "X")
    n = x.shape[0]
    y_arr = np.asarray(y)
    if y_arr.shape != (n,):
        raise FairjaxError(f"y must have shape [n] = ({n},) to match X, got {y_arr.shape}.")
    try:
        y_num = y_arr.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise FairjaxError(f"y must hold the labels 0 and 1: {e}") from e
    values = np.unique(y_num)
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise FairjaxError(f"y must hold only 0 and 1, found values {values[:10].tolist()}.")
    if len(values) < 2:
        raise FairjaxError(f"y must contain both classes 0 and 1, found only {values.tolist()}.")
    if sample_weight is None:
        w = np.ones(n, np.float32)
    else:
        w = np.asarray(sample_weight, dtype=np.float32)
        if w.shape != (n,):
            raise FairjaxError(
                f"sample_weight must have shape [n] = ({n},) to match X, got {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise FairjaxError("sample_weight must be finite and non-negative.")
        if w.sum() <= 0:
            raise FairjaxError("sample_weight must have a positive sum.")
    return x, y_num.astype(np.float32), w


def _check_positive(name: str, value: Any, *, integer: bool = False, zero_ok: bool = False):
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float))
    ok = ok and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value >= 0 if zero_ok else value > 0)
    if not ok:
        kind = "integer" if integer else "number"
        sign = "non-negative" if zero_ok else "positive"
        raise FairjaxError(f"{name} must be a {sign} {kind}, got {value!r}.")


# ------------------------------------------------------------------- logistic regression


def _tree_norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))


def make_logistic_regression(
    *,
    l2: float = 1e-4,
    max_steps: int = 500,
    tol: float = 1e-6,
    memory_size: int = 10,
    fit_intercept: bool = True,
) -> Classifier:
    """L2-regularised logistic regression fitted to its optimum by full-batch L-BFGS.

    Minimises `sum_i s_i log_loss_i / sum_i s_i + l2 / 2 * ||w||^2` over the weights `w`
    and the (unpenalised) intercept, with sample weights `s` (1 by default). This is
    scikit-learn's `LogisticRegression(C=1 / (l2 * sum(s)))`, and a weight of 2 is
    the same as duplicating the row. Parameters start at zero, so `fit` ignores its key;
    runs in float32.

    Args:
      l2: L2 penalty strength (>= 0) on the mean-loss scale; must be > 0 when the classes
        are separable, or the optimum is at infinity.
      max_steps: maximum L-BFGS iterations.
      tol: stop once the gradient norm of the objective falls below this.
      memory_size: number of L-BFGS curvature pairs kept.
      fit_intercept: learn an intercept (else it stays 0).

    Returns:
      A `Classifier`; params are `[(W [d, 1], b [1])]`.
    """
    _check_positive("l2", l2, zero_ok=True)
    _check_positive("max_steps", max_steps, integer=True)
    _check_positive("tol", tol, zero_ok=True)
    _check_positive("memory_size", memory_size, integer=True)
    opt = optax.lbfgs(memory_size=memory_size)

    def objective(params, x, y, w):
        ((weights, b),) = params
        b = b if fit_intercept else jax.lax.stop_gradient(b)
        return _weighted_bce([(weights, b)], x, y, w) + 0.5 * l2 * jnp.sum(weights**2)

    @jax.jit
    def solve(x, y, w):
        fun = lambda p: objective(p, x, y, w)
        value_and_grad = optax.value_and_grad_from_state(fun)
        d = x.shape[1]
        init = [(jnp.zeros((d, 1), x.dtype), jnp.zeros((1,), x.dtype))]

        def step(carry):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
            return optax.apply_updates(params, updates), state

        def keep_going(carry):
            _, state = carry
            count = optax.tree_utils.tree_get(state, "count")
            grad = optax.tree_utils.tree_get(state, "grad")
            return (count == 0) | ((count < max_steps) & (_tree_norm(grad) >= tol))

        params, _ = jax.lax.while_loop(keep_going, step, (init, opt.init(init)))
        return params

    def fit(key: jax.Array, X: Any, y: Any, *, sample_weight: Any = None) -> Params:
        """Fit to X [n, d], y [n] in {0, 1}, optional sample_weight [n]; key is unused."""
        del key  # deterministic: convex problem started from zero
        x, y_f, w = _check_fit_inputs(X, y, sample_weight)
        return solve(jnp.asarray(x), jnp.asarray(y_f), jnp.asarray(w))

    return Classifier(fit=fit, predict_proba=predict_proba)


# ------------------------------------------------------------------------------- MLP


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> Params:
    """Glorot-uniform weights and zero biases for layer sizes `(d_in, h_1, ..., 1)`.

    W ~ U(-a, a) with a = sqrt(6 / (d_in + d_out)). All weights come from one uniform draw
    cut into layers (one random-bits kernel keeps compilation on CPU short).
    """
    shapes = list(itertools.pairwise(sizes))
    u = jax.random.uniform(key, (sum(a * b for a, b in shapes),), jnp.float32, -1.0, 1.0)
    params, start = [], 0
    for d_in, d_out in shapes:
        limit = np.sqrt(6.0 / (d_in + d_out))
        w = limit * u[start : start + d_in * d_out].reshape(d_in, d_out)
        params.append((w, jnp.zeros((d_out,), jnp.float32)))
        start += d_in * d_out
    return params


def stratified_split(key: jax.Array, y: np.ndarray, fraction: float) -> tuple[np.ndarray, ...]:
    """Split row indices into (rest, held_out), holding out `fraction` of each class.

    Rows are ordered at random within each class (one draw of random bits, so one small
    compilation per length) and the first `round(fraction * n_class)` of each class are
    held out, keeping at least one row of each class in `rest`. Outputs are sorted int arrays.
    """
    bits = np.asarray(jax.random.bits(key, (len(y),), jnp.uint32))
    rest, held = [], []
    for c in np.unique(y):
        ids = np.flatnonzero(y == c)
        ids = ids[np.argsort(bits[ids], kind="stable")]
        k = min(round(fraction * len(ids)), len(ids) - 1)
        held.append(ids[:k])
        rest.append(ids[k:])
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(held))


def holdout_rows(
    key: jax.Array, strata: np.ndarray, share: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """(training rows, held-out rows) for early stopping: `share` of every stratum of
    `strata` [n] held out (`stratified_split`); share 0 gives every row and None.

    Raises:
      FairjaxError: `share` > 0 holds out no row (too few rows per stratum).
    """
    if share == 0:
        return np.arange(len(strata)), None
    rows, held = stratified_split(key, strata, share)
    if len(held) == 0:
        raise FairjaxError(f"holdout={share} holds out no row of {len(strata)}; use a larger share")
    return rows, held


def make_mlp_trainer(
    *,
    hidden: Sequence[int] = (64, 64),
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 50,
    patience: int = 5,
    val_fraction: float = 0.1,
    weight_decay: float = 0.0,
    min_delta: float = 0.0,
) -> Callable[..., MLPFitResult]:
    """MLP training with early stopping that returns the history too.

    See `make_mlp_classifier` for the arguments; the returned function is
    `train(key, X [n, d], y [n], *, sample_weight=None) -> MLPFitResult`.
    """
    hidden = tuple(hidden)
    for h in hidden:
        _check_positive("hidden sizes", h, integer=True)
    _check_positive("lr", lr)
    _check_positive("batch_size", batch_size, integer=True)
    _check_positive("max_epochs", max_epochs, integer=True)
    _check_positive("patience", patience, integer=True)
    _check_positive("weight_decay", weight_decay, zero_ok=True)
    _check_positive("min_delta", min_delta, zero_ok=True)
    if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
        raise FairjaxError(f"val_fraction must lie in [0, 1), got {val_fraction!r}.")

    if weight_decay > 0:
        # Decoupled decay on weight matrices only, not on biases.
        mask = lambda params: [(True, False) for _ in params]
        opt = optax.adamw(lr, weight_decay=weight_decay, mask=mask)
    else:
        opt = optax.adam(lr)

    @functools.partial(jax.jit, static_argnums=1)
    def init_fn(key, d):
        return training.init_train_state(init_mlp(key, (d, *hidden, 1)), opt)

    # Built once per trainer, so `training.run` reuses its compiled epochs across fits.
    step_fn = training.make_train_step(_batch_bce, opt)
    batch_fn = random_rows(batch_size)
    val_loss_fn = jax.jit(_weighted_bce)

    def train(key: jax.Array, X: Any, y: Any, *, sample_weight: Any = None) -> MLPFitResult:
        x, y_f, w = _check_fit_inputs(X, y, sample_weight)
        init_key, split_key, train_key = jax.random.split(key, 3)
        train_idx, val_idx = stratified_split(split_key, y_f, val_fraction)
        data = tuple(jnp.asarray(a[train_idx]) for a in (x, y_f, w))
        xv, yv, wv = (jnp.asarray(a[val_idx]) for a in (x, y_f, w))
        use_val = len(val_idx) > 0 and float(w[val_idx].sum()) > 0
        steps = -(-len(train_idx) // batch_size)  # one epoch

        # `run` keeps the state of the lowest score; a loss that does not beat the best
        # by more than `min_delta` scores inf, so it neither wins nor resets the patience.
        val_loss, last, best_loss = [], None, np.inf

        def eval_fn(state: training.TrainState) -> float:
            nonlocal last, best_loss
            last = state
            vl = float(val_loss_fn(state.params, xv, yv, wv))
            val_loss.append(vl)
            if not vl < best_loss - min_delta:  # NaN never counts as an improvement
                return np.inf
            best_loss = vl
            return vl

        state, record = training.run(
            train_key,
            init_fn(init_key, x.shape[1]),
            step_fn,
            batch_fn,
            data,
            num_steps=max_epochs * steps,
            chunk_size=steps,
            progress=False,
            desc="MLP classifier",
            eval_fn=eval_fn if use_val else None,
            patience=patience if use_val else None,
        )
        train_loss = record.metrics["loss"].astype(np.float64)
        return MLPFitResult(
            params=state.params,
            last_params=(last if use_val else state).params,
            train_loss=train_loss,
            val_loss=np.asarray(val_loss),
            best_epoch=max(record.best_step // steps - 1, 0) if use_val else len(train_loss) - 1,
            train_index=train_idx,
            val_index=val_idx,
            record=record,
        )

    return train


def make_mlp_classifier(
    *,
    hidden: Sequence[int] = (64, 64),
    lr: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 50,
    patience: int = 5,
    val_fraction: float = 0.1,
    weight_decay: float = 0.0,
    min_delta: float = 0.0,
) -> Classifier:
    """ReLU MLP trained by Adam on minibatches with early stopping.

    `fit(key, X, y, *, sample_weight=None)` holds out a stratified `val_fraction` of the
    rows, trains on the rest for at most `max_epochs` epochs of ceil(n_train / batch_size)
    steps (each step `batch_size` rows drawn with replacement, one compiled
    `fairjax.training.run` chunk per epoch), stops once the weighted validation log-loss has not
    improved by more than `min_delta` for `patience` epochs, and returns the parameters of
    the best validation epoch. Same key, same data -> identical parameters. With
    `sample_weight`, each minibatch (and the validation) loss is the weighted mean over its
    rows.

    Args:
      hidden: hidden layer widths; `()` gives a linear model.
      lr: Adam learning rate.
      batch_size: minibatch size; rows are drawn with replacement, so it may exceed the
        number of training rows (one step per epoch then).
      max_epochs: maximum number of passes over the training rows.
      patience: epochs without validation improvement before stopping.
      val_fraction: fraction of each class held out for early stopping, in [0, 1);
        0 trains on everything for `max_epochs` epochs and returns the last parameters.
      weight_decay: decoupled (AdamW) weight decay on weight matrices, not biases.
      min_delta: smallest decrease of the validation loss that counts as improvement.

    Returns:
      A `Classifier`; params are `[(W1 [d, h1], b1 [h1]), ..., (Wk [h_{k-1}, 1], bk [1])]`.
    """
    train = make_mlp_trainer(
        hidden=hidden,
        lr=lr,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        val_fraction=val_fraction,
        weight_decay=weight_decay,
        min_delta=min_delta,
    )

    def fit(key: jax.Array, X: Any, y: Any, *, sample_weight: Any = None) -> Params:
        """Fit to X [n, d], y [n] in {0, 1}, optional sample_weight [n]."""
        return train(key, X, y, sample_weight=sample_weight).params

    return Classifier(fit=fit, predict_proba=predict_proba)


# ------------------------------------------------------------- gradient-boosted trees


def make_hist_gradient_boosting(
    *,
    max_iter: int = 100,
    learning_rate: float = 0.1,
    max_leaf_nodes: int = 31,
    l2_regularization: float = 0.0,
    early_stopping: bool | str = "auto",
    n_threads: int | None = None,
) -> Classifier:
    """scikit-learn's `HistGradientBoostingClassifier` as a `Classifier`.

    The arguments and their defaults are scikit-learn's (early stopping on a 10% validation
    split when there are more than 10,000 rows). `n_threads` caps its OpenMP threads
    during fit and predict (None: scikit-learn's default, every core); on a machine whose
    cores are busy with other work, 1 can be many times faster.
    `fit(key, X, y, *, sample_weight=None)` validates like the other classifiers and
    draws scikit-learn's `random_state` (which only matters for early stopping's split)
    from `key`, so the same key gives the same model.

    Returns:
      A `Classifier` whose params are the fitted `HistGradientBoostingClassifier` (not a
      pytree: no jit / vmap / grad, no `fairjax.persist`); `predict_proba(params, X [n, d])`
      returns a float64 numpy array [n].

    Raises:
      FairjaxError: scikit-learn is not installed.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise FairjaxError(
            f"classifier 'hgb' needs scikit-learn (pip install scikit-learn): {e}"
        ) from None
    _check_positive("max_iter", max_iter, integer=True)
    _check_positive("learning_rate", learning_rate)
    _check_positive("max_leaf_nodes", max_leaf_nodes, integer=True)
    _check_positive("l2_regularization", l2_regularization, zero_ok=True)
    if early_stopping not in ("auto", True, False):
        raise FairjaxError(f"early_stopping must be 'auto', True or False, got {early_stopping!r}.")
    if n_threads is not None:
        _check_positive("n_threads", n_threads, integer=True)

    def threads():
        if n_threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        return threadpool_limits(n_threads, user_api="openmp")

    def fit(key: jax.Array, X: Any, y: Any, *, sample_weight: Any = None):
        """Fit to X [n, d], y [n] in {0, 1}, optional sample_weight [n]."""
        x, y_f, w = _check_fit_inputs(X, y, sample_weight)
        seed = int(jax.random.bits(key, (), jnp.uint32)) % 2**31
        model = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            l2_regularization=l2_regularization,
            early_stopping=early_stopping,
            random_state=seed,
        )
        with threads():
            return model.fit(x, y_f.astype(np.int64), sample_weight=w)

    def hgb_predict_proba(model, x) -> np.ndarray:
        """P(y = 1 | x) [n] from the fitted estimator; x [n, d]."""
        x = np.asarray(x, np.float32)
        with threads():
            proba = model.predict_proba(x)
        return proba[:, list(model.classes_).index(1)].astype(np.float64)

    return Classifier(fit=fit, predict_proba=hgb_predict_proba)


CLASSIFIERS: dict[str, Callable[..., Classifier]] = {
    "logistic": make_logistic_regression,
    "mlp": make_mlp_classifier,
    "hgb": make_hist_gradient_boosting,
}


def make_classifier(name: str, **kwargs: Any) -> Classifier:
    """Build a classifier by name ("logistic", "mlp" or "hgb") with the factory's keyword args."""
    if name not in CLASSIFIERS:
        raise FairjaxError(f"Unknown classifier {name!r}; choose one of {sorted(CLASSIFIERS)}.")
    factory = CLASSIFIERS[name]
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise FairjaxError(
            f"Unknown option(s) {unknown} for classifier {name!r}; accepted: {sorted(accepted)}."
        )
    return factory(**kwargs)
