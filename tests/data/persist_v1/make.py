"""Writes the format-1 model folders in this directory (run once, at commit e05b6b9).

    PYTHONPATH=. python tests/data/persist_v1/make.py

Each method is fitted with a tiny configuration (a few steps, narrow networks: the rows it
generates are meaningless, only their reproduction matters) and saved with the code of
that commit, the last to write format 1. Beside the folders that `tests/test_persist.py`
samples, `<name>.csv` holds the 16 rows it sampled with `jax.random.key(7)` then; that test
checks that today's `load` gives the same rows. The script is kept to show how the folders
were made; it writes format 1 only when run with that commit's code.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import jax
import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))

from test_baselines import make_toy  # noqa: E402
from test_fadm import toy_dataset  # noqa: E402
from test_faircausesyn import SCM_ROLES, scm_frame  # noqa: E402
from test_intersectional import _toy_dataset  # noqa: E402

from fairjax import fadm  # noqa: E402
from fairjax.baselines import ddpm, fairgan, gan, vae  # noqa: E402
from fairjax.data import Schema, TabularDataset  # noqa: E402
from fairjax.faircausesyn import pipeline as faircausesyn  # noqa: E402
from fairjax.intersectional import pipeline as intersectional  # noqa: E402

KEY = jax.random.key(7)
ROWS = 16


def tiny(config, **fields):
    names = {f.name for f in dataclasses.fields(config)}
    return dataclasses.replace(config, **{k: v for k, v in fields.items() if k in names})


SAMPLED = ("intersectional", "faircausesyn")


def write(name, model):
    folder = HERE / name
    if folder.exists():
        shutil.rmtree(folder)
    model.save(folder)
    if name in SAMPLED:
        model.sample(KEY, ROWS).to_csv(HERE / f"{name}.csv", index=False)


def main():
    small = dict(width=16, depth=1, num_blocks=1, time_dim=8, latent_dim=4, batch_size=32)
    write(
        "fadm",
        fadm.fit(
            jax.random.key(0),
            toy_dataset(300),
            config=tiny(
                fadm.PRESETS["quick"],
                **small,
                classifier_width=16,
                classifier_blocks=1,
                score_steps=20,
                classifier_steps=20,
                sample_steps=10,
            ),
            progress=False,
        ),
    )
    toy = make_toy(300)
    for name, module in (("vae", vae), ("gan", gan), ("ddpm", ddpm), ("fairgan", fairgan)):
        config = tiny(module.PRESETS["quick"], **small, steps=20, sample_steps=10)
        write(name, module.fit(jax.random.key(0), toy, config=config, progress=False))
    config = intersectional.IntersectionalConfig(batch_size=8, steps=10, eval_every=5, eval_rows=20)
    write(
        "intersectional",
        intersectional.fit(jax.random.key(0), _toy_dataset(120), config=config, progress=False),
    )
    schema = Schema(label="y", sensitive=("x",), categorical=("x", "z", "w", "y"), numeric=())
    config = tiny(
        faircausesyn.PRESETS["quick"],
        **SCM_ROLES,
        d_model=8,
        n_heads=2,
        n_layers=1,
        batch_size=32,
        steps=20,
        rounds=1,
        rows_per_round=200,
        audit_folds=2,
        val_fraction=0.0,
    )
    data = TabularDataset(scm_frame(600), schema, name="scm")
    model = faircausesyn.fit(jax.random.key(0), data, config=config, progress=False)
    write("faircausesyn", model)
    model.generator.save(HERE / "faircausesyn-local")
    model.generator.sample(KEY, ROWS).to_csv(HERE / "faircausesyn-local.csv", index=False)
    llm_config = dataclasses.replace(config, backend="llm", llm_url="http://x", llm_model="m")
    examples = data.frame.iloc[:8].reset_index(drop=True)
    llm_model = dataclasses.replace(model, config=llm_config, generator=None, examples=examples)
    write("faircausesyn-llm", llm_model)
    pd.DataFrame(examples).to_csv(HERE / "faircausesyn-llm.csv", index=False)


if __name__ == "__main__":
    main()
