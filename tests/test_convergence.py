"""Training until converged: the held-out criterion, patience and the recorded stop step."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import classifiers, fadm, sde, training
from fairjax.errors import FairjaxError
from tests.test_fadm import TINY, toy_dataset


def test_holdout_dsm_criterion_equals_float64_numpy():
    """The criterion is the DSM loss at the times and noises of its fixed key: the same
    number as a float64 numpy computation of eq. 4-5 on those draws, at every call."""
    beta_min, beta_max, eps = 0.1, 20.0, 1e-5
    forward = sde.make_sde("vp", beta_min=beta_min, beta_max=beta_max)

    def score_fn(a, x, t):  # a linear "network": s(x, t) = -a * x / (1 + t)
        return -a * x / (1.0 + t)

    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(64, 3)).astype(np.float32)
    key = jax.random.key(5)
    eval_fn = training.make_holdout_eval(sde.make_dsm_loss(forward, score_fn), x0, key)
    state = training.TrainState(0, jnp.float32(0.7), None)

    # the draws make_dsm_loss takes from the key, then the loss in float64
    t_keys, z_keys = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(key, len(x0)))
    t = np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (), minval=eps, maxval=1.0))(t_keys))
    z = np.asarray(jax.vmap(lambda k: jax.random.normal(k, (3,)))(z_keys))
    t, z = t.astype(np.float64), z.astype(np.float64)
    log_mean = -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min
    std = np.sqrt(1.0 - np.exp(2.0 * log_mean))
    x_t = np.exp(log_mean)[:, None] * x0.astype(np.float64) + std[:, None] * z
    score = -0.7 * x_t / (1.0 + t[:, None])
    expected = np.mean(np.sum((std[:, None] * score + z) ** 2, axis=1))

    assert eval_fn(state) == pytest.approx(expected, rel=1e-5)
    assert eval_fn(state) == eval_fn(state)  # deterministic: fixed times and noises
    assert eval_fn(state._replace(params=jnp.float32(0.0))) != pytest.approx(expected)


def test_patience_stops_at_the_held_out_optimum():
    """Train on (w - 2)^2 while the held-out loss is (w - 1)^2: SGD at rate 0.1 gives
    w_k = 2 (1 - 0.8^k), closest to 1 at k = 3; patience 3 stops at step 6 and returns w_3."""
    opt = optax.sgd(0.1)
    step = training.make_train_step(lambda w, batch, key: (w - 2.0) ** 2, opt)
    held = training.make_holdout_eval(lambda w, data, key: (w - data) ** 2, 1.0, jax.random.key(0))
    state, record = training.run(
        jax.random.key(1),
        training.init_train_state(jnp.float32(0.0), opt),
        step,
        lambda data, key: data,
        0.0,
        num_steps=50,
        chunk_size=1,
        progress=False,
        eval_fn=held,
        patience=3,
    )
    assert record.best_step == 3 and record.num_steps == 6
    assert record.eval_steps.tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(
        record.eval_scores, (2 * (1 - 0.8 ** np.arange(1, 7)) - 1) ** 2, rtol=1e-5
    )
    assert float(state.params) == pytest.approx(2 * (1 - 0.8**3), rel=1e-6)


def test_fit_with_holdout_records_curve_and_stop_step(tmp_path):
    """Each network is scored every `eval_every` steps on held-out rows; the record keeps
    the curve, the steps run and the kept (best) step, and --log-dir's CSV the curve."""
    data = toy_dataset(n=600)
    config = dataclasses.replace(
        TINY,
        meta="off",
        score_steps=200,
        classifier_steps=200,
        classifier_lr=0.05,  # noisy classifiers, so that patience ends them early
        holdout=0.2,
        eval_every=20,
        patience=2,
    )
    files = training.TrainFiles(log_dir=tmp_path)
    model = fadm.fit(jax.random.key(0), data, config=config, progress=False, train_files=files)
    stopped = []
    for name, max_steps in (("score", 200), ("label", 200), ("sensitive", 200)):
        rec = training.Record.from_dict(model.history["record"][name])
        assert rec.eval_steps.tolist() == list(range(20, rec.num_steps + 1, 20))
        assert rec.num_steps <= max_steps and rec.best_step in rec.eval_steps
        assert rec.best_step == rec.eval_steps[np.argmin(rec.eval_scores)]
        stopped.append(rec.num_steps < max_steps)
        if stopped[-1]:  # stopped early: `patience` evaluations after the best
            assert rec.num_steps - rec.best_step == 2 * 20
        csv = (tmp_path / f"{name}.csv").read_text().splitlines()
        assert csv[0].endswith(",eval_score") and len(csv) - 1 == len(rec.eval_steps)
    assert any(stopped), "no network stopped early; the toy no longer exercises patience"
    # the kept score net's criterion, recomputed from outside, is the best recorded score
    spec = fadm.TrainSpec.of(config, fadm.make_modules(config, model.encoder.dim, 2, 2)[0],
                             "score", False)  # fmt: skip
    x = model.encoder.encode(data.frame)
    d = np.unique(data.frame["dom"].to_numpy(), return_inverse=True)[1]
    _, held = fadm._holdout_split(jax.random.key(0), 0.2, d, data.y.astype(np.int32))
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), fadm._EVAL_STREAM), 0)
    again = training.make_holdout_eval(fadm._loss_fn(spec), jnp.asarray(x[held]), key)
    rec = model.history["record"]["score"]
    best = type("S", (), {"params": model.params["score"]})
    assert again(best) == pytest.approx(min(rec["eval_scores"]), rel=1e-4)


def test_holdout_is_stratified_and_off_in_the_quick_preset():
    d = np.repeat([0, 1, 2], [100, 40, 20])
    y = np.tile([0, 1], 80)
    rows, held = fadm._holdout_split(jax.random.key(0), 0.25, d, y)
    assert len(np.intersect1d(rows, held)) == 0 and len(rows) + len(held) == 160
    for dom, n in ((0, 100), (1, 40), (2, 20)):
        for label in (0, 1):
            assert np.sum((d[held] == dom) & (y[held] == label)) == round(0.25 * n / 2)
    assert fadm.PRESETS["quick"].holdout == 0  # the quick preset trains fixed counts
    assert fadm.PRESETS["paper"].holdout > 0


@pytest.mark.parametrize(
    "field, value",
    [("holdout", 1.0), ("holdout", -0.1), ("eval_every", 0), ("patience", 1.5), ("patience", True)],
)
def test_bad_stopping_config(field, value):
    with pytest.raises(FairjaxError, match=field):
        fadm.FADMConfig(**{field: value})


@pytest.mark.parametrize("method", ["vae"])  # DDPM's DSM criterion is FADM's (tested above)
def test_baselines_stop_on_their_held_out_loss(method):
    """The VAE's held-out negative ELBO (KL weight 1, whatever kl_weight trains with) is
    recorded every eval_every steps and the best parameters are kept."""
    from fairjax.baselines import common, ddpm, vae
    from tests.test_baselines import make_toy

    toy = make_toy(n=800)
    module = {"ddpm": ddpm, "vae": vae}[method]
    extra = {"kl_weight": 0.5} if method == "vae" else {"sample_steps": 20}
    config = dataclasses.replace(
        module.PRESETS["quick"], width=32, steps=150, holdout=0.25, eval_every=25, patience=2,
        **extra,
    )  # fmt: skip
    model = module.fit(jax.random.key(0), toy, config=config, progress=False)
    rec = model.history["record"]
    assert rec["eval_steps"] == list(range(25, rec["num_steps"] + 1, 25))
    assert rec["best_step"] == rec["eval_steps"][int(np.argmin(rec["eval_scores"]))]
    if method == "vae":  # the kept parameters' held-out negative ELBO is the best score
        train_key = jax.random.split(jax.random.key(0), 3)[2]
        split_key, eval_key = jax.random.split(
            jax.random.fold_in(train_key, common._HOLDOUT_STREAM)
        )
        _, held = classifiers.stratified_split(split_key, toy.y, 0.25)
        layout = common.Layout.of(model.encoder)
        elbo = vae._loss(vae.NetSpec.of(config), layout, 1.0)
        x = jnp.asarray(model.encoder.encode(toy.frame)[held])
        score = float(elbo(model.params, x, eval_key))
        assert score == pytest.approx(min(rec["eval_scores"]), rel=1e-4)
        trained = float(vae._loss(vae.NetSpec.of(config), layout, 0.5)(model.params, x, eval_key))
        assert trained < score  # the criterion is not the kl_weight-0.5 training loss


@pytest.mark.parametrize("method", ["ddpm", "vae"])
def test_baseline_stopping_config_is_validated(method):
    from fairjax.baselines import ddpm, vae

    module = {"ddpm": ddpm, "vae": vae}[method]
    assert module.PRESETS["quick"].holdout == 0 and module.PRESETS["paper"].holdout > 0
    with pytest.raises(FairjaxError, match="holdout"):
        dataclasses.replace(module.PRESETS["quick"], holdout=1.5)
    with pytest.raises(FairjaxError, match="eval_every"):
        dataclasses.replace(module.PRESETS["quick"], eval_every=0)


def test_holdout_rows_keeps_every_row_at_share_0_and_refuses_an_empty_holdout():
    key = jax.random.key(0)
    rows, held = classifiers.holdout_rows(key, np.array([0, 0, 1, 1, 1]), 0.0)
    assert held is None and rows.tolist() == [0, 1, 2, 3, 4]
    strata = np.repeat(np.arange(4), 10)  # 10 rows per stratum: 2 held out of each at 0.2
    rows, held = classifiers.holdout_rows(key, strata, 0.2)
    assert len(held) == 8 and sorted([*rows, *held]) == list(range(40))
    assert np.bincount(strata[held]).tolist() == [2, 2, 2, 2]
    with pytest.raises(FairjaxError, match="holds out no row of 3"):
        classifiers.holdout_rows(key, np.array([0, 1, 2]), 0.1)  # one row per stratum
