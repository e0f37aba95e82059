"""Baseline generators of FADM's Table 1 (arXiv 2406.09495): VAE, GAN, DDPM and FairGAN.

Each module has the interface of every fairjax generator (`fairjax.generators`): `PRESETS`
("quick", "paper"), `fit(key, dataset, *, config, progress)`, a model with
`sample(key, n, *, label_proportion=None, ...)` and `save(path)`, and `load(path)`.

Unlike FADM, these models generate the label and the sensitive column(s) jointly with the
features (`common.joint_columns`); `label_proportion=None` keeps the generated labels and a
float selects generated rows to that label share (`common.sample_frame`).

- `vae`: Gaussian VAE with per-block softmax / per-column Gaussian decoder (TVAE-style).
- `gan`: WGAN-GP with Gumbel-softmax one-hot heads (CTGAN-style).
- `ddpm`: FADM's score model and samplers, without guidance or meta-learning.
- `fairgan`: FairGAN (Xu et al. 2018): G(z, s), a critic on (x, y, s) and a classifier of s
  from the generated (x, y) that G plays against with weight lambda.
"""
