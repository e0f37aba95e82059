"""Per-group classifier two-sample tests, vmapped over groups in one compiled call.

For every group g a small MLP learns to tell its real rows (class 1) from its generated
rows (class 0) on a random training part and is scored on the held-out part by balanced
accuracy: 0.5 = indistinguishable, 1 = fully separable. All groups share one padded shape
[G, M, d] with 0/1 row weights, so the G tests are one `vmap` of a test written for one
group, trained full-batch with Adam inside `lax.scan`: one compilation for every
checkpoint and every group, where a loop over `fairjax.metrics.classifier_two_sample_test`
would compile once per group size. The optimizer step is `fairjax.training.make_train_step`;
the loop is not `fairjax.training.run`, whose host-side chunks (progress, divergence check,
evaluation) cannot run inside a `vmap` over groups, and one `run` per group would pay a
dispatch and a host round trip per group and chunk where the vmapped scan pays one call.

Per group: features are standardised with the weighted mean / std of the training part;
both classes get equal total weight in the loss; a row is held out with probability
`test_fraction`.

References:
    Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", arXiv 1610.06545;
    arXiv 2405.14521 (rating generated group data with classifiers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from fairjax import training
from fairjax.classifiers import init_mlp, logits_fn
from fairjax.metrics import weighted_balanced_accuracy

__all__ = ["make_group_c2st", "two_sample_balanced_accuracy"]


def two_sample_balanced_accuracy(
    key: jax.Array,
    real: jax.Array,
    real_w: jax.Array,
    fake: jax.Array,
    fake_w: jax.Array,
    *,
    hidden: Sequence[int] = (32,),
    steps: int = 300,
    lr: float = 1e-2,
    test_fraction: float = 0.3,
) -> jax.Array:
    """Held-out balanced accuracy of an MLP telling `real` from `fake` (one group).

    Args:
        key: PRNG key (init and held-out split).
        real: [M, d] real rows; real_w: [M] 0/1 weights (0 = padding).
        fake: [M, d] generated rows; fake_w: [M] 0/1 weights.
        hidden, steps, lr, test_fraction: classifier and split (static).

    Returns:
        [] balanced accuracy on the held-out rows; nan if a class has no held-out or no
        training row.
    """
    split_key, init_key = jax.random.split(key)
    x = jnp.concatenate([real, fake]).astype(jnp.float32)
    y = jnp.concatenate([jnp.ones(real.shape[0]), jnp.zeros(fake.shape[0])])
    w = jnp.concatenate([real_w, fake_w]).astype(jnp.float32)
    test = jax.random.uniform(split_key, (x.shape[0],)) < test_fraction
    w_train = jnp.where(test, 0.0, w)
    w_test = jnp.where(test, w, 0.0)

    total = jnp.maximum(jnp.sum(w_train), 1.0)
    mean = jnp.sum(w_train[:, None] * x, 0) / total
    std = jnp.sqrt(jnp.sum(w_train[:, None] * (x - mean) ** 2, 0) / total)
    x = (x - mean) / jnp.where(std > 1e-6, std, 1.0)

    # equal total weight per class, so the loss is balanced like the score
    pos = jnp.sum(w_train * y)
    neg = jnp.sum(w_train * (1 - y))
    w_loss = w_train * jnp.where(y == 1, 0.5 / jnp.maximum(pos, 1.0), 0.5 / jnp.maximum(neg, 1.0))

    params = init_mlp(init_key, (x.shape[1], *tuple(hidden), 1))
    opt = optax.adam(lr)

    def loss_fn(p, batch, key):
        x, y, w = batch
        return jnp.sum(w * optax.sigmoid_binary_cross_entropy(logits_fn(p, x), y))

    # The shared step, not `training.run`: this fit is full-batch and runs vmapped over
    # groups inside one jit (see the module docstring).
    step = training.make_train_step(loss_fn, opt)

    def body(state, _):
        return step(state, (x, y, w_loss), split_key)[0], None  # the loss ignores the key

    state, _ = jax.lax.scan(body, training.init_train_state(params, opt), None, length=steps)
    params = state.params
    ba = weighted_balanced_accuracy(y == 1, logits_fn(params, x) >= 0, w_test)
    return jnp.where((pos > 0) & (neg > 0), ba, jnp.nan)  # nan too if a class was never seen


def make_group_c2st(
    *,
    hidden: Sequence[int] = (32,),
    steps: int = 300,
    lr: float = 1e-2,
    test_fraction: float = 0.3,
) -> Callable[..., jax.Array]:
    """Jitted `c2st(key, real [G, M, d], real_w [G, M], fake [G, M, d], fake_w [G, M]) -> [G]`.

    Group g uses `fold_in(key, g)`; see `two_sample_balanced_accuracy`.
    """
    return _compiled(tuple(int(h) for h in hidden), int(steps), float(lr), float(test_fraction))


@functools.lru_cache(maxsize=8)
def _compiled(hidden, steps, lr, test_fraction):
    one = functools.partial(
        two_sample_balanced_accuracy,
        hidden=hidden,
        steps=steps,
        lr=lr,
        test_fraction=test_fraction,
    )

    @jax.jit
    def c2st(key, real, real_w, fake, fake_w):
        keys = jax.vmap(lambda g: jax.random.fold_in(key, g))(jnp.arange(real.shape[0]))
        return jax.vmap(one)(keys, real, real_w, fake, fake_w)

    return c2st
