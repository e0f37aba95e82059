"""benchmarks/peer_torch.py: the PyTorch peer computes what fairjax computes (when PyTorch is
installed, the `bench` extra), and the script says how to get PyTorch when it is absent."""

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import peer_torch

from fairjax import fadm, guidance, nets

TINY = dataclasses.replace(
    fadm.PRESETS["quick"], width=16, num_blocks=2, time_dim=8, classifier_width=8
)


def test_without_torch_the_script_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert peer_torch.main(["--out", str(tmp_path / "x.json")]) is None
    assert 'pip install -e ".[bench]"' in capsys.readouterr().out
    assert not (tmp_path / "x.json").exists()


@pytest.fixture(scope="module")
def twins():
    torch = pytest.importorskip("torch")
    modules = fadm.make_modules(TINY, peer_torch.DIM, 2, 2)
    example = (jnp.zeros(peer_torch.DIM), jnp.zeros(()))
    params = [nets.init_params(m, jax.random.key(i), *example) for i, m in enumerate(modules)]
    # non-zero output layers of the residual blocks, so every weight matters
    params = [jax.tree.map(lambda a, i=i: a + 0.05 * jax.random.normal(jax.random.key(9 + i),
                                                                       a.shape), p)
              for i, p in enumerate(params)]  # fmt: skip
    peers = peer_torch.torch_networks(torch, TINY)
    for peer, p in zip(peers, params, strict=True):
        peer_torch.copy_params(torch, peer, p)
    x = np.asarray(jax.random.normal(jax.random.key(5), (7, peer_torch.DIM)))
    t = np.asarray(jax.random.uniform(jax.random.key(6), (7,)))
    return torch, modules, params, peers, x, t


def test_the_pytorch_networks_equal_the_flax_ones(twins):
    torch, modules, params, peers, x, t = twins
    for module, peer, p in zip(modules, peers, params, strict=True):
        want = np.asarray(nets.make_apply(module)(p, jnp.asarray(x), jnp.asarray(t)))
        with torch.no_grad():
            got = peer(torch.tensor(x), torch.tensor(t)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_the_pytorch_guidance_gradient_equals_fairjax_guidance(twins):
    torch, modules, params, peers, x, t = twins
    label, sensitive = (nets.make_apply(m) for m in modules[1:])
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    guide = guidance.fair_guided(
        lambda x, t, cond: jnp.zeros_like(x),
        label_logits_fn=lambda x, t: label(params[1], x, t),
        sensitive_logits_fn=lambda x, t: sensitive(params[2], x, t),
        label_scale=0.7,
        sensitive_scale=1.3,
    )
    want = np.asarray(jax.vmap(guide)(jnp.asarray(x), jnp.asarray(t), jnp.asarray(y)))
    got = peer_torch.guidance_grad(
        torch, peers[1], peers[2], torch.tensor(x), torch.tensor(t), torch.tensor(y), 0.7, 1.3
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
