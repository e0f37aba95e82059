"""FairCauseSyn (arXiv 2506.19082): fit a row generator, then refine it against a causal goal.

    config = dataclasses.replace(PRESETS["quick"], mode="fair")
    model = fit(jax.random.key(0), datasets.load("nhefs"), config=config)
    frame = model.sample(jax.random.key(1), 1000)     # the refined generator's rows
    model.rounds                                     # every round's measures and gap

`fit` reads the causal roles from the config (or, for the bundled NHEFS and COMPAS data,
from `ROLES`), measures the real data's effects (`refine.audit`), trains the local
transformer (`local.fit_local`) or connects to an OpenAI-compatible server (`llm`), and runs
the refinement loop (`refine.refine`): each round generates `rows_per_round` rows with the
current generation state, audits them and adjusts the state. The state is the path
guidance of the local model ({"guidance": `local.PathGuidance` fields}, steered by
`refine.path_guidance_adjuster`; models refined before guidance existed keep path-removal
weights {"spurious", "indirect", "direct"}, `local.PathWeights`)
and the feedback paragraph of the prompt for a language model (`llm.feedback_text`). The
model keeps the best round's state, so `sample` generates new rows the same way.

Only the role columns (X, Z, W, Y) are generated; other columns are not modelled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import jax
import pandas as pd

from fairjax import persist
from fairjax.causal.nuisance import MODELS as AUDIT_MODELS
from fairjax.data import TabularDataset
from fairjax.errors import FairjaxError
from fairjax.faircausesyn import llm, local, refine
from fairjax.faircausesyn.roles import CausalRoles, balanced_rows, make_roles
from fairjax.generators import select_labels

METHOD = "faircausesyn"
BACKENDS = ("local", "llm")
EXAMPLES_PER_CELL = 50  # real rows per (X, Y) cell kept for the language model's prompts

# Declared roles of the bundled health and justice data (used when the config names no X).
ROLES = {
    "nhefs": dict(
        X="sex",
        x0="female",
        x1="male",
        Y="death",
        Z=("age", "race"),
        # Height (ht) is left out: it nearly determines sex, so P(sex | Z, W) hits the
        # propensity clip for 1 row in 5 and the effects are barely identified.
        W=(
            "education",
            "smokeintensity",
            "smokeyrs",
            "sbp",
            "dbp",
            "wt71",
            "diabetes",
            "exercise",
            "active",
            "alcoholfreq",
            "asthma",
            "bronch",
            "hbp",
            "qsmk",
        ),
    ),
    "compas": dict(
        X="race",
        x0="Caucasian",
        x1="African-American",
        Y="two_year_recid",
        Z=("age", "sex"),
        W=("juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count", "c_charge_degree"),
    ),
}


@dataclasses.dataclass(frozen=True)
class FairCauseSynConfig:
    """Hyperparameters of FairCauseSyn (flat and JSON-serialisable, for `--set NAME=VALUE`).

    Attributes:
      X, Y: protected attribute and 0/1 outcome columns; X = "" takes the roles from
        `ROLES` for a bundled data set, else X = the first sensitive column, Y = the label,
        Z empty and W every other column.
      Z, W: comma-separated confounder and mediator columns (used when X is given).
      x0, x1: baseline and comparison values of X, as text ("" with X given: X's two
        values in sorted order). Rows with other values of X are dropped.
      mode: "faithful" (every measure within tolerance of the real data's) or "fair"
        (the `effects` driven to 0, `business_necessity` ones to their real value).
      effects, business_necessity: comma-separated subsets of ctfde, ctfie, ctfse.
      tolerance: goal met when max |m_syn - target| <= tolerance * |tv_real|.
      rounds: maximum rounds of the refinement loop.
      rows_per_round: rows generated and audited per round (0: as many as the real data).
      audit_folds: cross-fitting folds of the audits.
      audit_model: nuisance models of the audits (`fairjax.causal.decompose`'s `model`:
        "auto" chooses per nuisance among logistic, MLP and gradient boosting).
      backend: "local" (the transformer of `local`) or "llm" (`llm_url`, `llm_model`).
      n_bins ... patience: `local.LocalConfig` of the local transformer.
      llm_url, llm_model, api_key_env: the OpenAI-compatible server; the key is read from
        the environment variable `api_key_env` and never stored.
      llm_timeout_s: seconds to wait for one reply of the server (> 0).
    """

    X: str = ""
    Z: str = ""
    W: str = ""
    Y: str = ""
    x0: str = ""
    x1: str = ""
    mode: str = "faithful"
    effects: str = "ctfde,ctfie,ctfse"
    business_necessity: str = ""
    tolerance: float = 0.1
    rounds: int = 5
    rows_per_round: int = 0
    audit_folds: int = 5
    audit_model: str = "auto"
    backend: str = "local"
    n_bins: int = local.LocalConfig.n_bins
    d_model: int = local.LocalConfig.d_model
    n_heads: int = local.LocalConfig.n_heads
    n_layers: int = local.LocalConfig.n_layers
    batch_size: int = local.LocalConfig.batch_size
    steps: int = local.LocalConfig.steps
    lr: float = local.LocalConfig.lr
    temperature: float = local.LocalConfig.temperature
    top_p: float = local.LocalConfig.top_p
    val_fraction: float = local.LocalConfig.val_fraction
    eval_every: int = local.LocalConfig.eval_every
    patience: int = local.LocalConfig.patience
    llm_url: str = ""
    llm_model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    llm_timeout_s: float = 60.0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise FairjaxError(f"backend must be one of {BACKENDS}, got {self.backend!r}.")
        if self.backend == "llm" and not (self.llm_url and self.llm_model):
            raise FairjaxError("backend 'llm' needs llm_url and llm_model.")
        for name in ("rounds", "audit_folds"):
            if getattr(self, name) < 1:
                raise FairjaxError(f"{name} must be >= 1, got {getattr(self, name)!r}.")
        t = self.llm_timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < float("inf"):
            raise FairjaxError(f"llm_timeout_s must be a positive number of seconds, got {t!r}.")
        if self.audit_model not in AUDIT_MODELS:
            raise FairjaxError(
                f"audit_model must be one of {list(AUDIT_MODELS)}, got {self.audit_model!r}."
            )
        if self.rows_per_round < 0:
            raise FairjaxError(f"rows_per_round must be >= 0, got {self.rows_per_round!r}.")
        self.local_config()  # validates the local model's fields
        make_goal_options(self)

    def local_config(self) -> local.LocalConfig:
        names = {f.name for f in dataclasses.fields(local.LocalConfig)}
        return local.LocalConfig(
            **{k: v for k, v in dataclasses.asdict(self).items() if k in names}
        )

    def backend_config(self) -> llm.LLMBackend:
        return llm.LLMBackend(
            url=self.llm_url,
            model=self.llm_model,
            api_key_env=self.api_key_env,
            timeout_s=self.llm_timeout_s,
        )


def path_options(state: Mapping[str, Any]) -> dict:
    """`LocalRowModel.sample` options of a local generation state: {"guidance": {...}} ->
    guidance=PathGuidance(...); a flat {"spurious", "indirect", "direct"} (path-removal
    weights of models refined before guidance existed) -> weights=PathWeights(...)."""
    if "guidance" in state:
        return {"guidance": local.PathGuidance(**state["guidance"])}
    return {"weights": local.PathWeights(**state)}


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def make_goal_options(config: FairCauseSynConfig) -> dict:
    """`refine.make_goal`'s options from the config (validated)."""
    options = dict(
        mode=config.mode,
        effects=_split(config.effects),
        business_necessity=_split(config.business_necessity),
        tolerance=config.tolerance,
    )
    refine.check_goal_options(**options)
    return options


def _from_local(preset: str, **options) -> FairCauseSynConfig:
    """The FairCauseSyn config with the local transformer of `local.PRESETS[preset]`."""
    names = {f.name for f in dataclasses.fields(FairCauseSynConfig)}
    generator = dataclasses.asdict(local.PRESETS[preset])
    return FairCauseSynConfig(**{k: v for k, v in generator.items() if k in names}, **options)


PRESETS = {"quick": _from_local("quick", rounds=3), "paper": _from_local("paper", rounds=6)}


def _level(values: list, text: str, arg: str) -> Any:
    by_text = {str(v): v for v in values}
    if text not in by_text:
        raise FairjaxError(f"{arg}={text!r} is not a value of X: {values[:10]}")
    return by_text[text]


def resolve_roles(
    dataset: TabularDataset, config: FairCauseSynConfig
) -> tuple[pd.DataFrame, CausalRoles]:
    """The frame restricted to X in {x0, x1} and its validated roles (see the config)."""
    frame = dataset.frame
    if config.X:
        spec = dict(
            X=config.X,
            Y=config.Y or dataset.schema.label,
            Z=_split(config.Z),
            W=_split(config.W),
            x0=config.x0,
            x1=config.x1,
        )
    elif dataset.name in ROLES:
        spec = dict(ROLES[dataset.name])
    else:
        X = dataset.schema.sensitive[0]
        Y = dataset.schema.label
        W = tuple(c for c in dataset.schema.columns if c not in (X, Y, dataset.schema.domain))
        spec = dict(X=X, Y=Y, Z=(), W=W, x0="", x1="")
    if spec["X"] not in frame.columns:
        raise FairjaxError(f"X={spec['X']!r} not found; columns are {list(frame.columns)}")
    values = sorted(frame[spec["X"]].unique().tolist(), key=str)
    if spec["x0"] == "" and spec["x1"] == "":
        if len(values) != 2:
            raise FairjaxError(
                f"X={spec['X']!r} has {len(values)} values {values[:10]}; set x0 and x1."
            )
        spec["x0"], spec["x1"] = values
    else:
        spec["x0"] = _level(values, str(spec["x0"]), "x0")
        spec["x1"] = _level(values, str(spec["x1"]), "x1")
    frame = frame[frame[spec["X"]].isin([spec["x0"], spec["x1"]])].reset_index(drop=True)
    return frame, make_roles(frame, **spec)


@dataclasses.dataclass(frozen=True)
class FairCauseSynModel:
    """A fitted and refined FairCauseSyn generator.

    Attributes:
      config: hyperparameters.
      roles: the causal roles.
      goal: the refinement goal (with the real data's measures).
      rounds: every round's log (`refine.Round.to_dict`); the model generates with the
        best round's state (`state`).
      generator: the local transformer (`local.LocalRowModel`), None for the llm backend.
      examples: real rows kept for the language model's prompts (None for local).
    """

    config: FairCauseSynConfig
    roles: CausalRoles
    goal: refine.Goal
    rounds: list
    generator: local.LocalRowModel | None
    examples: pd.DataFrame | None

    method = METHOD  # for `fairjax.persist` (class attributes, not fields)
    config_cls = FairCauseSynConfig
    nested_models: ClassVar[dict[str, type]] = {"local": local.LocalRowModel}

    def __post_init__(self):
        if self.config.backend == "local" and self.generator is None:
            raise FairjaxError("the local backend needs its transformer (local/), none given")
        if self.config.backend == "llm" and self.examples is None:
            raise FairjaxError("the llm backend needs its prompt examples, none given")

    @property
    def best(self) -> dict:
        """The log of the round whose state the model keeps."""
        return min(self.rounds, key=lambda r: r["gap"])

    @property
    def state(self) -> Any:
        """The best round's generation state: path guidance {"guidance": {"spurious",
        "indirect", "direct"}} (local; path weights {"spurious", "indirect", "direct"} in
        models refined before guidance existed) or the prompt feedback text or None (llm)."""
        return self.best["state"]

    def sample(
        self,
        key: jax.Array,
        n: int,
        *,
        labels: Any = None,
        label_proportion: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """Generate `n` rows of the role columns (causal order) with the refined state.

        Args:
          key: PRNG key; with the local backend the same key gives the same rows.
          n: rows, >= 1.
          labels: optional [n] 0/1 outcomes Y, row i gets labels[i]; label_proportion:
            exactly round(p n) rows with Y = 1. Both select from generated rows
            (`fairjax.generators.select_labels`); None: Y as generated.
          temperature, top_p: override the local model's sampling options.
          progress: progress output of the llm backend.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FairjaxError(f"n must be an integer >= 1, got {n!r}.")

        def draw(k: jax.Array, m: int) -> pd.DataFrame:
            if self.generator is not None:
                return self.generator.sample(
                    k, m, **path_options(self.state), temperature=temperature, top_p=top_p
                )
            frame, _ = llm.generate_llm(
                k,
                self.config.backend_config(),
                self.examples,
                self.roles,
                m,
                feedback=self.state,
                progress=progress,
            )
            return frame

        return select_labels(
            key,
            n,
            draw_fn=draw,
            label=self.roles.Y,
            label_proportion=label_proportion,
            labels=labels,
        )

    def save(
        self, path: str | Path, *, overwrite: bool = False, provenance: dict | None = None
    ) -> None:
        """Write the model to folder `path` with a manifest (see `fairjax.persist`):
        config.json, model.json (roles, goal, rounds, and the prompt examples of the llm
        backend), and the local transformer in sub-folder local/. `overwrite` replaces an
        existing model folder."""
        persist.save_model(self, path, overwrite=overwrite, provenance=provenance)

    def _extras(self) -> persist.Extras:
        info = {"roles": self.roles.to_dict(), "goal": self.goal.to_dict(), "rounds": self.rounds}
        if self.examples is not None:
            info["examples"] = persist.frame_to_json(self.examples)
        return persist.Extras(info=info, nested={"local": self.generator})

    @classmethod
    def _from_extras(cls, extras: persist.Extras) -> dict:
        examples = extras.info.get("examples")
        return dict(
            roles=CausalRoles.from_dict(extras.info["roles"]),
            goal=refine.Goal.from_dict(extras.info["goal"]),
            rounds=extras.info["rounds"],
            generator=extras.nested.get("local"),
            examples=None if examples is None else persist.frame_from_json(examples),
        )


def load(path: str | Path) -> FairCauseSynModel:
    """Read and verify a model written by `FairCauseSynModel.save`."""
    return persist.load_model(FairCauseSynModel, path)


def fit(
    key: jax.Array,
    dataset: TabularDataset,
    *,
    config: FairCauseSynConfig,
    progress: bool = True,
    generator: local.LocalRowModel | None = None,
) -> FairCauseSynModel:
    """Fit the generator on `dataset` and refine it toward the config's goal.

    Args:
      key: PRNG key (training, generation and audits).
      dataset: the real data.
      config: see `FairCauseSynConfig`.
      progress: training progress bar and one line per refinement round.
      generator: a local transformer already trained on these rows and roles (e.g. the
        `generator` of a model refined toward another goal); None trains one.

    Returns:
      `FairCauseSynModel` keeping the best round's generation state.
    """
    frame, roles = resolve_roles(dataset, config)
    audit_key, train_key, refine_key, example_key = jax.random.split(key, 4)
    audit_fn = lambda k, f: refine.audit(
        k, f, roles, model=config.audit_model, n_folds=config.audit_folds
    )
    goal = refine.make_goal(audit_fn(audit_key, frame), **make_goal_options(config))
    n_rows = config.rows_per_round or len(frame)
    examples = None
    if config.backend == "local":
        if generator is None:
            generator = local.fit_local(
                train_key, frame, roles, config=config.local_config(), progress=progress
            )
        elif generator.roles != roles:
            raise FairjaxError(f"generator was trained for {generator.roles}, not {roles}.")

        def generate_fn(k, state):
            rows = generator.sample(k, n_rows, **path_options(state))
            return rows, {"rows": len(rows)}

        adjust_fn = refine.path_guidance_adjuster
        state = {"guidance": dict(local.PathGuidance()._asdict())}
    else:
        backend = config.backend_config()
        examples = balanced_rows(example_key, frame, roles, per_cell=EXAMPLES_PER_CELL)

        def generate_fn(k, feedback):
            rows, report = llm.generate_llm(
                k, backend, examples, roles, n_rows, feedback=feedback, progress=progress
            )
            return rows, {
                "rows": len(rows),
                "kept": report.kept,
                "dropped": report.dropped,
                "reasons": dict(report.reasons),
            }

        def adjust_fn(feedback, rounds, goal):
            last = {m: v for m, (v, _) in rounds[-1].measures.items()}
            return llm.feedback_text(last, goal.targets, mode=goal.mode)

        state = None

    def log_fn(r: refine.Round) -> None:
        if progress:
            values = ", ".join(f"{m} {v:+.4f}" for m, (v, _) in r.measures.items())
            print(f"round {r.index}: gap {r.gap:.3f} ({'met' if r.met else 'not met'}); {values}")

    result = refine.refine(
        refine_key,
        generate_fn,
        audit_fn,
        adjust_fn,
        goal,
        state,
        max_rounds=config.rounds,
        log_fn=log_fn,
    )
    rounds = [r.to_dict() for r in result.rounds]
    return FairCauseSynModel(config, roles, goal, rounds, generator, examples)
