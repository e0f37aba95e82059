"""fairjax against a PyTorch peer: the same FADM networks, loss and guided sampler, one run.

    pip install -e ".[bench]"            # PyTorch (CPU wheel is enough)
    python benchmarks/peer_torch.py [--preset paper|quick] [--out FILE.json]

(default --out: benchmarks/results/peer_torch.json).

The PyTorch side is written as a PyTorch user would: `nn.Module`s mirroring
`fairjax.nets.TimeConditionedMLP` (weights copied from the Flax parameters, and the
outputs checked equal before anything is timed), eager mode, `torch.optim.Adam`, and for
guidance one `torch.autograd.grad` of lambda_y log p(y | x) + lambda_z H(p(z | x)) with
respect to x. Timed on the same shapes as `bench_fadm.py` (Adult: 97 encoded features;
batch 256; guided Euler-Maruyama over 1,024 rows), with as many threads as JAX uses
(every core). Ratios are PyTorch time / fairjax time, so > 1 means fairjax is faster.

Without PyTorch the script prints how to install it and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench_fadm import DIM, matmul_rate, timed

from fairjax import fadm, nets, outputs, sde, training

ROWS = 1024  # rows of the guided sampling step
EM_STEPS = 200  # fairjax: one compiled sampler call of this many steps, timed per step


def torch_networks(torch, config):
    """PyTorch modules equal to `fairjax.nets.TimeConditionedMLP` (and its Fourier embedding)."""
    nn = torch.nn

    class ResidualBlock(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.norm0, self.norm1 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
            self.dense0, self.dense1 = nn.Linear(width, width), nn.Linear(width, width)
            self.dense2 = nn.Linear(width, width)

        def forward(self, h, temb):
            z = self.dense0(nn.functional.silu(self.norm0(h))) + self.dense1(temb)
            return h + self.dense2(nn.functional.silu(self.norm1(z)))

    class TimeConditionedMLP(nn.Module):
        def __init__(self, in_dim, out_dim, width, num_blocks, time_dim):
            super().__init__()
            half = time_dim // 2
            freqs = torch.exp(-np.log(10_000.0) * torch.arange(half) / half)
            self.register_buffer("freqs", freqs)
            self.time0, self.time1 = nn.Linear(time_dim, width), nn.Linear(width, width)
            self.inp = nn.Linear(in_dim, width)
            self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(num_blocks))
            self.norm, self.out = nn.LayerNorm(width, eps=1e-6), nn.Linear(width, out_dim)

        def forward(self, x, t):
            angles = 1000.0 * t[:, None] * self.freqs
            temb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
            temb = self.time1(nn.functional.silu(self.time0(temb)))
            h = self.inp(x)
            for block in self.blocks:
                h = block(h, temb)
            return self.out(nn.functional.silu(self.norm(h)))

    def classifier(c):
        return TimeConditionedMLP(DIM, c, config.classifier_width, config.classifier_blocks, 64)

    score = TimeConditionedMLP(DIM, DIM, config.width, config.num_blocks, config.time_dim)
    return score, classifier(2), classifier(2)


def copy_params(torch, module, params) -> None:
    """Load Flax parameters of a `TimeConditionedMLP` into its PyTorch twin."""
    p = params["params"] if "params" in params else params

    def dense(linear, d):
        linear.weight.data = torch.tensor(np.asarray(d["kernel"]).T.copy())
        linear.bias.data = torch.tensor(np.asarray(d["bias"]).copy())

    def norm(layer, d):
        layer.weight.data = torch.tensor(np.asarray(d["scale"]).copy())
        layer.bias.data = torch.tensor(np.asarray(d["bias"]).copy())

    # Flax numbers submodules in creation order, and `nn.Dense(w)(nn.Dense(w)(temb))` creates
    # the outer layer first: Dense_1 then Dense_0 embed t, Dense_2 embeds x, Dense_3 is the
    # output layer (see nets.TimeConditionedMLP.__call__).
    dense(module.time0, p["Dense_1"]), dense(module.time1, p["Dense_0"])
    dense(module.inp, p["Dense_2"]), dense(module.out, p["Dense_3"])
    norm(module.norm, p["LayerNorm_0"])
    for i, block in enumerate(module.blocks):
        b = p[f"ResidualBlock_{i}"]
        dense(block.dense0, b["Dense_0"]), dense(block.dense1, b["Dense_1"])
        dense(block.dense2, b["Dense_2"])
        norm(block.norm0, b["LayerNorm_0"]), norm(block.norm1, b["LayerNorm_1"])


def torch_timed(fn, repeats: int = 30, warmup: int = 5) -> float:
    """Median seconds per call of `fn()` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def vp_marginal(torch, config, t):
    """(mean coefficient, std) of the VP SDE at times t (`fairjax.sde.make_vp_sde`)."""
    lmc = -0.25 * t**2 * (config.beta_max - config.beta_min) - 0.5 * t * config.beta_min
    return torch.exp(lmc), torch.sqrt(1.0 - torch.exp(2.0 * lmc))


def guidance_grad(torch, label_net, sensitive_net, x, t, y, lambda_y, lambda_z):
    """grad_x [lambda_y log p_t(y | x) + lambda_z H(p_t(z | x))] per row (x [n, d], t [n],
    y [n] long), the FADM guidance of `fairjax.guidance.fair_guided`, by one backward pass."""
    x = x.detach().requires_grad_(True)
    log_p_y = torch.log_softmax(label_net(x, t), -1).gather(1, y[:, None]).sum()
    log_p_z = torch.log_softmax(sensitive_net(x, t), -1)
    entropy = -(log_p_z.exp() * log_p_z).sum()
    (grad,) = torch.autograd.grad(lambda_y * log_p_y + lambda_z * entropy, x)
    return grad


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=sorted(fadm.PRESETS))
    parser.add_argument("--out", default="benchmarks/results/peer_torch.json")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print('PyTorch is not installed: pip install -e ".[bench]" to run this benchmark.')
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    config = fadm.PRESETS[args.preset]
    b = config.batch_size
    key = jax.random.key(0)
    modules = fadm.make_modules(config, DIM, 2, 2)
    networks = fadm.make_networks(config, DIM, 2, 2)
    example = (jnp.zeros(DIM), jnp.zeros(()))
    params = [
        nets.init_params(m, jax.random.fold_in(key, i), *example) for i, m in enumerate(modules)
    ]
    peers = torch_networks(torch, config)
    for module, p in zip(peers, params, strict=True):
        copy_params(torch, module, p)

    # The same networks: outputs agree on random inputs before anything is timed.
    x = np.asarray(jax.random.normal(key, (b, DIM)))
    t = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (b,)))
    for module, peer, p in zip(modules, peers, params, strict=True):
        want = np.asarray(nets.make_apply(module)(p, jnp.asarray(x), jnp.asarray(t)))
        with torch.no_grad():
            got = peer(torch.tensor(x), torch.tensor(t)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # --- DSM train step (fairjax.sde.make_dsm_loss; Adam)
    dsm = sde.make_dsm_loss(networks.sde, networks.score_fn)
    optimizer = optax.adam(config.lr)
    step = training.make_train_step(dsm, optimizer)
    state = training.init_train_state(params[0], optimizer)
    jax_train, flops_train = timed(step, state, jnp.asarray(x), key, repeats=20)

    score_net = peers[0]
    torch_opt = torch.optim.Adam(score_net.parameters(), lr=config.lr)
    x0 = torch.tensor(x)

    def torch_train_step():
        t = torch.rand(b) * (1.0 - 1e-5) + 1e-5
        z = torch.randn_like(x0)
        mean, std = vp_marginal(torch, config, t)
        x_t = mean[:, None] * x0 + std[:, None] * z
        score = -score_net(x_t, t) / std[:, None]
        loss = ((std[:, None] * score + z) ** 2).sum(dim=1).mean()
        torch_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch_opt.step()

    torch_train = torch_timed(torch_train_step)

    # --- one guided Euler-Maruyama step over ROWS rows (score + grad log p(y|x) + grad H)
    sampler = fadm._compiled_sampler(
        fadm.NetSpec.of(config), DIM, 2, 2, "em", EM_STEPS, config.guide
    )
    all_params = {"score": params[0], "label": params[1], "sensitive": params[2]}
    keys = jax.random.split(key, ROWS)
    y = jnp.zeros(ROWS, jnp.int32)
    one = jnp.float32(1.0)
    jax_em_total, _ = timed(
        lambda p, k, y: sampler(p, k, y, one, one, jnp.float32(config.guide_t_max)),
        all_params, keys, y, repeats=3,
    )  # fmt: skip
    jax_em = jax_em_total / EM_STEPS

    label_net, sensitive_net = peers[1], peers[2]
    for net in peers:
        net.requires_grad_(False)
    xs = torch.randn(ROWS, DIM)
    y_t = torch.zeros(ROWS, dtype=torch.long)
    dt = -(1.0 - 1e-3) / 1000

    def torch_em_step(t_value=0.5):
        nonlocal xs
        t = torch.full((ROWS,), t_value)
        beta = config.beta_min + t * (config.beta_max - config.beta_min)
        _, std = vp_marginal(torch, config, t)
        x = xs
        grad = guidance_grad(
            torch, label_net, sensitive_net, x, t, y_t, config.lambda_y, config.lambda_z
        )
        with torch.no_grad():
            score = -score_net(x, t) / std[:, None] + grad
            drift = -0.5 * beta[:, None] * x
            g = torch.sqrt(beta)[:, None]
            xs = x + (drift - g**2 * score) * dt + g * np.sqrt(-dt) * torch.randn_like(x)

    torch_em = torch_timed(torch_em_step)

    peak = matmul_rate()
    result = {
        "device": str(jax.devices()[0]),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "preset": args.preset,
        "matmul_gflops_per_s": peak,
        "train_step_s": {"fairjax": jax_train, "torch": torch_train},
        "train_step_fraction_of_matmul": flops_train / jax_train / 1e9 / peak,
        "guided_em_step_s": {"fairjax": jax_em, "torch": torch_em},
        "train_step_ratio": torch_train / jax_train,
        "guided_em_step_ratio": torch_em / jax_em,
        "load_average": os.getloadavg(),
    }
    print(f"preset {args.preset}; {result['threads']} threads; torch {torch.__version__}; "
          f"load {result['load_average'][0]:.1f}")  # fmt: skip
    print(f"{'what':<34} {'fairjax ms':>11} {'torch ms':>10} {'torch / fairjax':>16}")
    for name, a, c in (
        ("DSM train step (batch 256)", jax_train, torch_train),
        (f"guided EM step ({ROWS} rows)", jax_em, torch_em),
    ):
        print(f"{name:<34} {1e3 * a:>11.2f} {1e3 * c:>10.2f} {c / a:>16.2f}")
    # regenerating the committed benchmark file is this script's purpose; written atomically
    outputs.write_text(Path(args.out), json.dumps(result, indent=2), overwrite=True)
    return result


if __name__ == "__main__":
    main()
