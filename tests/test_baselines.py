"""Tests of the joint baselines (VAE, GAN, DDPM, FairGAN) and their shared pieces.

Unit tests check closed forms (block softmax, Gumbel-max frequencies, the gradient penalty
of a linear critic, the VAE's negative ELBO, exact label selection). The model tests fit
each method once on a small synthetic table with known structure (two correlated Gaussian
numerics whose means depend on s, a 3-level category, a label that depends on x1, a binary
s and a domain column that must be ignored), and check what matters for each method
against the data. They use the "quick" presets narrowed for this 9-dim table (`TEST_CONFIG`:
width 64, and fewer steps / smaller batches where the results stay as good), because
compiling and training four models is most of the suite's time on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fairjax import fadm, generators, training
from fairjax.baselines import common, ddpm, fairgan, gan, vae
from fairjax.data import Schema, TabularDataset
from fairjax.errors import FairjaxError

MODULES = {"vae": vae, "gan": gan, "ddpm": ddpm, "fairgan": fairgan}
N_SAMPLE = 3000
CHUNK = 256  # one compiled sampler shape per model keeps the suite fast
GENERATED = ["c", "s", "y", "x1", "x2"]  # schema order, without the domain "region"


def make_toy(n: int = 3000, seed: int = 0) -> TabularDataset:
    """s ~ B(0.4); x1 ~ N(1 + 1.5 s, 1); x2 = 0.5 x1 - 2 + N(0, 0.7^2); c | s categorical;
    y ~ B(sigmoid(1.5 (x1 - 1.6) + [c = w])); region independent of everything."""
    rng = np.random.default_rng(seed)
    s = rng.random(n) < 0.4
    x1 = 1.0 + 1.5 * s + rng.normal(size=n)
    x2 = 0.5 * x1 - 2.0 + 0.7 * rng.normal(size=n)
    pc = np.where(s[:, None], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1])
    c = np.array(["u", "v", "w"])[(rng.random(n)[:, None] > np.cumsum(pc, 1)).sum(1)]
    logit = 1.5 * (x1 - 1.6) + (c == "w")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "c": c,
            "x2": x2,
            "region": rng.choice(["east", "west"], n),
            "s": np.where(s, "m", "f"),
            "y": y,
        }
    )
    schema = Schema(
        label="y",
        sensitive=("s",),
        categorical=("c", "region", "s", "y"),
        numeric=("x1", "x2"),
        domain="region",
    )
    return TabularDataset(frame, schema, name="toy")


TOY = make_toy()
TEST_CONFIG = {
    "vae": dataclasses.replace(vae.PRESETS["quick"], width=64, steps=1500),
    "gan": dataclasses.replace(gan.PRESETS["quick"], width=64, batch_size=128),
    "ddpm": dataclasses.replace(ddpm.PRESETS["quick"], width=64, steps=1500, sample_steps=100),
    "fairgan": dataclasses.replace(fairgan.PRESETS["quick"], width=64, batch_size=128),
}
_FITTED: dict = {}
_SAMPLES: dict = {}


def fitted(method: str):
    """The method's model on TOY with `TEST_CONFIG` (fitted once per test session)."""
    if method not in _FITTED:
        mod = MODULES[method]
        _FITTED[method] = mod.fit(
            jax.random.key(0), TOY, config=TEST_CONFIG[method], progress=False
        )
    return _FITTED[method]


def samples(method: str) -> pd.DataFrame:
    """N_SAMPLE rows of the fitted model (key 1), as generated."""
    if method not in _SAMPLES:
        _SAMPLES[method] = fitted(method).sample(jax.random.key(1), N_SAMPLE, chunk_size=CHUNK)
    return _SAMPLES[method]


def s_auc(frame: pd.DataFrame) -> float:
    """In-sample ROC AUC of a logistic regression predicting s from (x, y)."""
    X = np.column_stack([frame.x1, frame.x2, frame.y, frame.c == "u", frame.c == "v"]).astype(float)
    s = (frame.s == "m").to_numpy()
    return roc_auc_score(s, LogisticRegression().fit(X, s).predict_proba(X)[:, 1])


# ---------------------------------------------------------------------------- unit tests


LAYOUT = common.Layout(dim=7, blocks=((1, 4), (5, 7)), numeric=(0, 4))


def test_joint_encoder_layout():
    enc = common.fit_joint_encoder(TOY, scaling="quantile")
    assert enc.columns == ("c", "x1", "x2", "y", "s")  # features, label, sensitive
    assert common.Layout.of(enc) == common.Layout(9, ((0, 3), (5, 7), (7, 9)), (3, 4))


def test_joint_columns_order_and_errors():
    cols, sens = common.joint_columns(TOY.schema)
    assert cols == ["c", "x1", "x2", "y", "s"] and sens == ["s"]
    only_domain = dataclasses.replace(TOY.schema, sensitive=("region",))
    with pytest.raises(FairjaxError, match="domain"):
        common.joint_columns(only_domain)
    no_features = Schema(label="y", sensitive=("s",), categorical=("s", "y"), numeric=())
    with pytest.raises(FairjaxError, match="feature"):
        common.joint_columns(no_features)


def test_block_log_softmax_matches_numpy():
    logits = jnp.array([3.0, 0.5, -1.0, 2.0, 7.0, 100.0, 101.0])
    out = np.asarray(common.block_log_softmax(LAYOUT, logits))
    want = np.zeros(7)
    for a, b in LAYOUT.blocks:
        z = np.asarray(logits[a:b], np.float64)
        want[a:b] = z - np.log(np.exp(z - z.max()).sum()) - z.max()
    np.testing.assert_allclose(out, want, atol=1e-5)
    probs = np.asarray(common.block_softmax(LAYOUT, logits))
    np.testing.assert_allclose([probs[1:4].sum(), probs[5:7].sum()], 1.0, atol=1e-6)
    assert probs[0] == probs[4] == 0.0


def test_row_head_is_a_gumbel_softmax_draw():
    raw = jnp.array([1.7, 0.0, np.log(2.0), np.log(5.0), -3.0, 0.0, 0.0])
    head = jax.jit(jax.vmap(common.make_row_head(LAYOUT, temperature=0.2), in_axes=(0, None)))
    rows = np.asarray(head(jax.random.split(jax.random.key(0), 20_000), raw))
    np.testing.assert_array_equal(rows[:, [0, 4]], np.tile(np.float32([1.7, -3.0]), (20_000, 1)))
    np.testing.assert_allclose(rows[:, 1:4].sum(1), 1.0, atol=1e-5)
    # argmax of a Gumbel-softmax sample is a draw from softmax(raw): probs 1/8, 2/8, 5/8
    freq = np.bincount(rows[:, 1:4].argmax(1), minlength=3) / 20_000
    np.testing.assert_allclose(freq, [1 / 8, 2 / 8, 5 / 8], atol=0.015)
    assert np.mean(rows[:, 1:4].max(1)) > 0.9  # temperature 0.2: nearly one-hot


def test_gradient_penalty_of_a_linear_critic():
    w = jnp.array([3.0, 4.0])  # ||w|| = 5, so GP = (5 - 1)^2 at every interpolate
    real, fake = jnp.ones((6, 2)), -jnp.ones((6, 2))
    gp = gan.gradient_penalty(lambda p, x: p @ x, w, real, fake, jax.random.key(0))
    assert float(gp) == pytest.approx(16.0)
    loss, wdist = gan.critic_loss(
        lambda p, x: p @ x, w, real, fake, jax.random.key(0), gp_weight=10.0
    )
    assert float(wdist) == pytest.approx(14.0)  # mean(w.1) - mean(w.(-1)) = 7 + 7
    assert float(loss) == pytest.approx(-14.0 + 160.0)


def test_vae_negative_elbo_closed_form():
    # Constant encoder/decoder: loss = -log p(x | out) + KL(N(mu, e^lv) || N(0, 1)).
    mu, logvar = np.array([0.5, -1.0]), np.array([0.2, -0.3])
    out = jnp.array([0.3, 1.0, 2.0, 0.0, -0.5, 0.0, 1.0])
    x = jnp.array([0.1, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    log_sigma = jnp.log(jnp.array([0.5, 2.0]))  # 2.0 is clipped to 1
    loss_fn = vae.make_loss(
        lambda p, x: jnp.asarray(np.concatenate([mu, logvar]), jnp.float32),
        lambda p, z: out,
        LAYOUT,
        kl_weight=0.5,
    )
    params = {"encoder": {}, "decoder": {}, "log_sigma": log_sigma}
    got = loss_fn(params, x[None], jax.random.key(0))

    def lse(v):
        return np.log(np.exp(v).sum())

    ce = (lse([1.0, 2.0, 0.0]) - 2.0) + (lse([0.0, 1.0]) - 0.0)
    sig = np.array([0.5, 1.0])
    resid = (np.array([0.1, 1.0]) - np.array([0.3, -0.5])) / sig
    gauss = np.sum(0.5 * resid**2 + np.log(sig) + 0.5 * np.log(2 * np.pi))
    kl = 0.5 * np.sum(np.exp(logvar) + mu**2 - 1 - logvar)
    assert float(got) == pytest.approx(ce + gauss + 0.5 * kl, rel=1e-5)


def _toy_draw(key, m):
    """m rows with y ~ B(0.3) and feature f = y + 0.1 N(0, 1): f tells whose row it is."""
    k1, k2 = jax.random.split(key)
    y = np.asarray(jax.random.bernoulli(k1, 0.3, (m,))).astype(np.int64)
    f = y + 0.1 * np.asarray(jax.random.normal(k2, (m,)))
    return pd.DataFrame({"f": f, "y": y})


TOY_SCHEMA = Schema(label="y", sensitive=("f",), categorical=("y",), numeric=("f",))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.75, 1.0])
def test_label_proportion_selects_exact_share(p):
    kw = dict(draw_fn=_toy_draw, schema=TOY_SCHEMA, label_proportion=p)
    frame = common.sample_frame(jax.random.key(3), 1001, **kw)
    assert len(frame) == 1001 and int(frame.y.sum()) == round(p * 1001)
    # the kept rows are the model's own rows given their label
    np.testing.assert_allclose(frame.f[frame.y == 1], 1.0, atol=0.6)
    np.testing.assert_allclose(frame.f[frame.y == 0], 0.0, atol=0.6)
    again = common.sample_frame(jax.random.key(3), 1001, **kw)
    pd.testing.assert_frame_equal(frame, again)
    if 0 < p < 1:  # shuffled, not sorted by label
        assert 0 < np.argmax(frame.y.to_numpy() != frame.y.iloc[0]) < 50


def test_label_proportion_none_and_errors():
    kw = dict(draw_fn=_toy_draw, schema=TOY_SCHEMA)
    plain = common.sample_frame(jax.random.key(3), 500, label_proportion=None, **kw)
    pd.testing.assert_frame_equal(plain, _toy_draw(jax.random.key(3), 500)[["y", "f"]])
    with pytest.raises(FairjaxError, match="label_proportion"):
        common.sample_frame(jax.random.key(3), 10, label_proportion=1.5, **kw)
    with pytest.raises(FairjaxError, match="n must be"):
        common.sample_frame(jax.random.key(3), 0, label_proportion=None, **kw)
    # 900 rows of label 1 at a 30% rate need ~3000 draws: more than 2 x 1000 allowed
    with pytest.raises(FairjaxError, match=r"label 1 in only \d+ of 2000 rows"):
        common.sample_frame(jax.random.key(3), 1000, label_proportion=0.9, max_oversample=2.0, **kw)


@pytest.mark.parametrize("method", list(MODULES))
def test_presets_are_json_and_validated(method):
    mod = MODULES[method]
    assert set(mod.PRESETS) >= {"quick", "paper"}
    for cfg in mod.PRESETS.values():
        d = json.loads(json.dumps(dataclasses.asdict(cfg)))
        assert type(cfg)(**d) == cfg
        hash(cfg)  # frozen
    cls = type(mod.PRESETS["quick"])
    with pytest.raises(FairjaxError, match="batch_size"):
        cls(batch_size=0)
    with pytest.raises(FairjaxError, match="scaling"):
        cls(scaling="log")
    assert generators.get(method) is mod


def test_ddpm_builds_fadms_score_net_and_validates_its_config():
    cfg = ddpm.PRESETS["quick"]
    same = fadm.FADMConfig(width=cfg.width, num_blocks=cfg.num_blocks, time_dim=cfg.time_dim)
    assert ddpm.make_module(cfg, 9) == fadm.make_modules(same, 9, 2, 2)[0]
    with pytest.raises(FairjaxError, match=r"sde must be one of \('vp', 'subvp'\); got 've'"):
        ddpm.DDPMConfig(sde="ve")
    with pytest.raises(FairjaxError, match=r"sampler must be one of \('em', 'pc', 'ode'\)"):
        ddpm.DDPMConfig(sampler="rk")
    with pytest.raises(FairjaxError, match=r"width must be a positive integer; got 0\.5"):
        ddpm.DDPMConfig(width=0.5)


def test_fairgan_requires_categorical_condition():
    schema = dataclasses.replace(TOY.schema, sensitive=("x1", "s"))
    data = dataclasses.replace(TOY, schema=schema)
    cfg = dataclasses.replace(fairgan.PRESETS["quick"], steps=1)
    with pytest.raises(FairjaxError, match=r"'x1'.*categorical"):
        fairgan.fit(jax.random.key(0), data, config=cfg, progress=False)


# ---------------------------------------------------------------------------- model tests

# Numeric means within MEAN_TOL * std of the data, category / label frequencies within
# FREQ_TOL. Observed worst cases over fit seeds 0-3 with TEST_CONFIG: VAE 0.03 std / 0.013,
# DDPM 0.08 / 0.034, GAN 0.08 / 0.053, FairGAN 0.06 / 0.056. The GANs get extra room: their
# means drift from step to step (up to 0.27 std with the quick presets' wider nets).
MEAN_TOL = {"vae": 0.1, "gan": 0.25, "ddpm": 0.15, "fairgan": 0.25}
FREQ_TOL = {"vae": 0.04, "gan": 0.08, "ddpm": 0.06, "fairgan": 0.08}


@pytest.mark.parametrize("method", list(MODULES))
def test_samples_match_the_data(method):
    real, fake = TOY.frame, samples(method)
    assert list(fake.columns) == GENERATED and len(fake) == N_SAMPLE
    pd.testing.assert_series_equal(fake.dtypes, real.dtypes[GENERATED])
    for col in ("x1", "x2"):
        assert abs(fake[col].mean() - real[col].mean()) < MEAN_TOL[method] * real[col].std()
        assert 0.8 < fake[col].std() / real[col].std() < 1.2
    for col in ("c", "s", "y"):
        want = real[col].value_counts(normalize=True)
        got = fake[col].value_counts(normalize=True).reindex(want.index, fill_value=0.0)
        np.testing.assert_allclose(got, want, atol=FREQ_TOL[method], err_msg=col)
    # the label still depends on x1 as in the data (P(y=1 | x1 > 1.6) ~ 0.8, else ~ 0.25)
    high = fake.x1 > 1.6
    assert fake.y[high].mean() - fake.y[~high].mean() > 0.3


@pytest.mark.parametrize("method", list(MODULES))
def test_save_load_sample_identical(method, tmp_path):
    model = fitted(method)
    model.save(tmp_path / method)
    loaded = generators.load(tmp_path / method)
    assert type(loaded) is type(model) and loaded.config == model.config
    a = model.sample(jax.random.key(5), 300, label_proportion=0.5, chunk_size=CHUNK)
    b = loaded.sample(jax.random.key(5), 300, label_proportion=0.5, chunk_size=CHUNK)
    pd.testing.assert_frame_equal(a, b)
    assert int(a.y.sum()) == 150


@pytest.mark.parametrize("method", list(MODULES))
def test_label_proportion_on_a_model(method):
    model = fitted(method)
    frame = model.sample(jax.random.key(2), 1000, label_proportion=0.9, chunk_size=CHUNK)
    assert int(frame.y.sum()) == 900
    # selected label-1 rows come from the model's p(x | y = 1): x1 shifts up as in the data
    real = TOY.frame
    want = real.x1[real.y == 1].mean() - real.x1[real.y == 0].mean()
    got = frame.x1[frame.y == 1].mean() - frame.x1[frame.y == 0].mean()
    assert abs(got - want) < 0.4


def test_sampling_compiles_once_per_shape():
    model = fitted("vae")
    model.sample(jax.random.key(8), 100, chunk_size=CHUNK)
    model.sample(jax.random.key(9), 700, label_proportion=0.2, chunk_size=CHUNK)
    cfg = model.config
    run = vae._compiled_sampler(vae.NetSpec.of(cfg), common.Layout.of(model.encoder), True)
    assert cfg.decoder_noise and run._cache_size() == 1


def test_compiled_code_is_keyed_on_the_networks_not_the_config():
    # Fields a compiled function does not use (step counts, batch sizes, rates for the
    # sampler) are not in its cache key; one it uses is.
    layout, dim = LAYOUT, LAYOUT.dim
    for mod, sampler_args, other in (
        (vae, (layout, True), dict(steps=7, lr=0.5, batch_size=3, kl_weight=0.5)),
        (gan, (layout,), dict(steps=7, lr=0.5, batch_size=3, n_critic=2, gp_weight=1.0)),
        (ddpm, (dim, "em", 10), dict(steps=7, lr=0.5, batch_size=3, sample_steps=9)),
    ):
        a, b = mod.PRESETS["quick"], dataclasses.replace(mod.PRESETS["quick"], **other)
        run = mod._compiled_sampler(mod.NetSpec.of(a), *sampler_args)
        assert mod._compiled_sampler(mod.NetSpec.of(b), *sampler_args) is run
        wider = dataclasses.replace(a, width=a.width + 1)
        assert mod._compiled_sampler(mod.NetSpec.of(wider), *sampler_args) is not run


def test_ddpm_recovers_mean_and_covariance():
    real, fake = TOY.frame[["x1", "x2"]], samples("ddpm")[["x1", "x2"]]
    np.testing.assert_allclose(fake.mean(), real.mean(), atol=0.12)
    np.testing.assert_allclose(np.cov(fake.T), np.cov(real.T), atol=0.15, rtol=0.1)


def test_fairgan_hides_s_better_than_gan():
    real_auc, gan_auc, fair_auc = s_auc(TOY.frame), s_auc(samples("gan")), s_auc(samples("fairgan"))
    assert real_auc > 0.9
    # seeds 0-3: GAN 0.85-0.89, FairGAN 0.71-0.76
    assert gan_auc > 0.8  # the GAN reproduces the s-dependence of (x, y)
    assert fair_auc < gan_auc - 0.06  # lambda = 1 removes part of it
    # FairGAN's s is its condition, drawn from the training marginal
    assert abs((samples("fairgan").s == "m").mean() - (TOY.frame.s == "m").mean()) < 0.03


def test_fit_resumed_from_a_checkpoint_is_bit_exact_and_logs_every_metric(
    tmp_path, stop_after_checkpoints
):
    """FairGAN (two metrics, the adversarial step of all four GAN / FairGAN / VAE / DDPM
    fits' shared `common.train`) interrupted at step 100 of 200, resumed. Last in the file:
    its compiled step is the one `fitted("fairgan")` built."""
    cfg = dataclasses.replace(TEST_CONFIG["fairgan"], steps=200)
    whole = fairgan.fit(jax.random.key(0), TOY, config=cfg, progress=False)
    files = training.TrainFiles(tmp_path / "ckpt", 100, log_dir=tmp_path / "logs")
    assert stop_after_checkpoints(1) == []
    with pytest.raises(KeyboardInterrupt):
        fairgan.fit(jax.random.key(0), TOY, config=cfg, progress=False, train_files=files)
    resumed = fairgan.fit(
        jax.random.key(0), TOY, config=cfg, progress=False, train_files=files._replace(resume=True)
    )
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert resumed.history == whole.history
    assert set(whole.history) == {"sensitive_ce", "wasserstein", "record"}
    log = pd.read_csv(tmp_path / "logs" / "fairgan.csv")
    assert list(log.columns) == ["step", "sensitive_ce", "wasserstein"] and len(log) == 2
