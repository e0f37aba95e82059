"""FADM Table 1 on UCI Adult: leave one race domain out, train on synthetic, test on real.

    python -m experiments.fadm_adult --preset quick|cpu|paper [--methods FADM,DDPM] [--out DIR]
    fairjax experiment fadm-adult --preset quick

Protocol (arXiv 2406.09495, Table 1): the 5 race values of Adult are domains; for every
target domain T a generator is trained on the other 4 (it never sees T), a downstream
classifier is trained on its synthetic rows only and tested on T's real rows. Metrics:
accuracy (%), R_DP = min/max over sex of P(y_hat = 1 | sex) and R_EOp = the same for
P(y_hat = 1 | sex, y = 1). The downstream classifiers are `fairjax.classifiers`' MLP
(hidden 64-64, Adam, early stopping; the declared one) and logistic regression; their
inputs are the feature columns (sex and race excluded).

The fairness knob. FADM is sampled on a grid of sensitive guides (`guidance.SENSITIVE_GUIDES`:
the paper's entropy and the uniform-target guide) x lambda_z x lambda_y; points that only
change sampling share one fit. Every grid point of every fit is scored, so the whole
accuracy-fairness curve is reported, together with the sensitive leakage of its rows
(`metrics.fit_sensitive_probe`: a logistic probe trained on the real training rows, mean
|2p - 1| on the generated rows).

Selection never looks at T. Validation data come from the source domains only:
- "loso" (the paper's protocol, preset paper): for every source V the generator is also
  trained on the 3 other sources and scored on V; a fit excluding {T, V} serves the (T, V)
  and (V, T) rotations, so a seed costs 15 fits per generator with a grid;
- "holdout" (presets quick, cpu): the generator is trained on a stratified 80% of the
  source rows and scored on the other 20% (pooled), and the same fit is tested on T: one
  fit per target.
Two declared rules choose a grid point from the validation scores (MLP downstream):
"accuracy" (the paper's: highest mean validation accuracy) and "fair" (highest mean
validation accuracy among points whose mean validation R_DP >= 0.8, the four-fifths rule;
if none qualifies, the highest validation R_DP).

Rows: "real" (the classifier trained on the real training rows: the reference), the
baselines VAE, GAN, DDPM and FairGAN, FADM with each guide and each rule, the ablations
(FADM without meta-learning, uniform guide; FADM with lambda_z = 0) and fairlearn's
in-processing anchors trained on the same real rows with scikit-learn's logistic
regression (sex used in training only; ThresholdOptimizer also at prediction time).

Caching: every fit's scores are written as JSON under `--out` (default
`runs/fadm_adult/<preset>`) together with what they depend on (preset, seed, options,
grid, rows); a record is reused only when all of that matches, so an interrupted run
resumes and a changed configuration is never silently mixed with old records.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
import zlib
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from experiments import common
from fairjax import classifiers, datasets, generators, metrics, outputs
from fairjax.data import TabularDataset, TabularEncoder
from fairjax.errors import FairjaxError

NAME = "fadm_adult"
DOMAINS = ("Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White")
SHORT = {"Amer-Indian-Eskimo": "A-I-E", "Asian-Pac-Islander": "A-P-I", "Black": "Black",
         "Other": "Other", "White": "White"}  # fmt: skip
PAPER = {  # arXiv 2406.09495 Table 1: per domain (ACC %, R_DP, R_EOp), then the average
    "VAE": [(84.51, .83, .73), (77.82, .55, .43), (88.70, .81, .54), (86.66, .88, .73),
            (78.38, .81, .68), (83.21, .74, .62)],
    "GAN": [(78.79, .86, .80), (59.60, .75, .73), (72.24, .90, .69), (80.42, .89, .78),
            (72.27, .84, .73), (72.66, .85, .74)],
    "DDPM": [(87.01, .89, .79), (79.75, .68, .42), (89.49, .91, .75), (85.16, .81, .48),
             (79.11, .74, .60), (84.10, .82, .61)],
    "FairGAN": [(85.16, .93, .90), (63.12, .95, .83), (82.97, .75, .44), (65.71, .82, .55),
                (74.00, .95, .84), (74.20, .88, .71)],
    "FADM": [(88.05, .95, .80), (79.04, .82, .66), (89.66, .92, .73), (86.73, .96, .81),
             (81.37, .86, .76), (84.97, .91, .75)],
}  # fmt: skip
GUIDES = ("entropy", "uniform")
RULES = ("accuracy", "fair")
FOUR_FIFTHS = 0.8
CLASSIFIERS = ("mlp", "logistic")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262}  # fmt: skip  # Student t quantiles for 95% intervals over seeds


@dataclasses.dataclass(frozen=True)
class Preset:
    """What a run covers and how it selects.

    Attributes:
      seeds, n_synthetic, targets, domains: as named (n_synthetic rows per table).
      selection: "loso" (leave one source domain out) or "holdout" (20% of source rows).
      lambda_z, lambda_y: FADM's sampling grid (for each guide; lambda_z = 0 is shared).
      generator_preset: preset of every generator ("quick" or "paper").
      fit_options: overrides of every generator's preset (the quick run's tiny sizes).
    """

    seeds: tuple[int, ...]
    n_synthetic: int
    targets: tuple[str, ...]
    domains: tuple[str, ...] = DOMAINS
    selection: str = "loso"
    lambda_z: tuple[float, ...] = (0.0, 1.0, 4.0, 16.0, 64.0, 256.0)
    lambda_y: tuple[float, ...] = (1.0, 2.0)
    generator_preset: str = "paper"
    fit_options: dict = dataclasses.field(default_factory=dict)


PRESETS = {
    # Wiring check used by the test suite: 4 small domains (White, 38,903 rows, left out),
    # one target, generators trained for 60 steps. Its numbers mean nothing.
    "quick": Preset(
        (0,),
        500,
        ("Other",),
        ("Amer-Indian-Eskimo", "Asian-Pac-Islander", "Other", "Black"),
        selection="holdout",
        lambda_z=(0.0, 16.0),
        lambda_y=(1.0,),
        generator_preset="quick",
        fit_options={"steps": 60, "score_steps": 60, "classifier_steps": 30, "sample_steps": 50},
    ),
    # What 2 CPU cores manage: every target, 3 seeds, the generators' quick presets, one
    # fit per target selected on held-out source rows, lambda_y = 1.
    "cpu": Preset(
        (0, 1, 2), 5000, DOMAINS, selection="holdout", lambda_y=(1.0,), generator_preset="quick"
    ),
    "paper": Preset((0, 1, 2), 10000, DOMAINS),
}


@dataclasses.dataclass(frozen=True)
class Method:
    """A generator of the table and the rows it yields.

    Attributes:
      name: row label (and cache key of its fits).
      generator: key of `fairjax.generators.METHODS`, or None for the real-data reference.
      fit_options: overrides of the generator preset.
      points: sampling grid, a list of `Model.sample` keyword dicts (one table each).
      rows: ((guide, rule), ...) rows of the table this method yields; guide "" means the
        whole grid, rule "" a single declared point.
      fit_as: name of the method whose fits (and tables) to reuse.
    """

    name: str
    generator: str | None
    fit_options: dict = dataclasses.field(default_factory=dict)
    points: tuple = ({},)
    rows: tuple = (("", ""),)
    fit_as: str | None = None


def fadm_points(preset: Preset, guides=GUIDES, lambda_z=None) -> tuple:
    """The sampling grid: every guide x lambda_z x lambda_y (lambda_z = 0 once)."""
    lambda_z = preset.lambda_z if lambda_z is None else lambda_z
    points = []
    for lz, ly in itertools.product(lambda_z, preset.lambda_y):
        for guide in guides if lz > 0 else guides[:1]:
            points.append({"guide": guide, "lambda_z": lz, "lambda_y": ly})
    return tuple(points)


def methods(preset: Preset) -> list[Method]:
    """The table's generators for a preset."""
    # Options a generator's config does not have are ignored (`Runner._fit`).
    opts = {"generator_preset": preset.generator_preset, **preset.fit_options}
    grid = fadm_points(preset)
    return [
        Method("real", None),
        Method("VAE", "vae", opts),
        Method("GAN", "gan", opts),
        Method("DDPM", "ddpm", opts),
        Method("FairGAN", "fairgan", opts),
        Method("FADM", "fadm", opts, grid, tuple(itertools.product(GUIDES, RULES))),
        Method(
            "FADM w/o meta",
            "fadm",
            opts | {"meta": "off"},
            fadm_points(preset, guides=("uniform",)),
            tuple(("uniform", rule) for rule in RULES),
        ),
        Method(
            "FADM λz=0",
            "fadm",
            opts,
            fadm_points(preset, lambda_z=(0.0,)),
            (("", "accuracy"),),
            fit_as="FADM",
        ),
    ]


ANCHORS = (  # fairlearn in-processing / post-processing on real rows (logistic base)
    ("EG DP≤0.05", "eg", 0.05),
    ("EG DP≤0.02", "eg", 0.02),
    ("EG DP≤0.01", "eg", 0.01),
    ("ThresholdOptimizer DP", "to", None),
)


# ----------------------------------------------------------------------- evaluation


class Evaluator:
    """Trains the downstream classifiers on one table and scores them on real rows.

    One encoder, fitted on all of Adult's feature columns (not its labels), is shared by
    every cell so that results are comparable; it is a fixed preprocessing, not a model.
    """

    def __init__(self, adult: TabularDataset):
        schema = adult.schema
        self.features = [c for c in schema.features if c != schema.domain]
        self.encoder = TabularEncoder.fit(
            adult.frame[self.features],
            categorical=[c for c in self.features if c in schema.categorical],
            numeric=[c for c in self.features if c in schema.numeric],
            scaling="standard",
        )
        self.label, self.sensitive = schema.label, schema.sensitive[0]
        self.models = {
            "mlp": classifiers.make_mlp_classifier(),
            "logistic": classifiers.make_logistic_regression(),
        }

    def fit(self, key, frame: pd.DataFrame) -> dict:
        """Both classifiers trained on `frame`: {name: predict(x) -> 0/1}."""
        x = self.encoder.encode(frame)
        y = frame[self.label].to_numpy(np.int64)
        if len(np.unique(y)) < 2:
            raise FairjaxError("a generator produced rows of one label only")
        fitted = {}
        for name, clf in self.models.items():
            params = clf.fit(key, x, y)
            fitted[name] = lambda x, clf=clf, params=params: classifiers.predict(clf, params, x)
        return fitted

    def score(self, predictors: dict, test: pd.DataFrame) -> dict:
        """{classifier: {"acc": %, "r_dp": .., "r_eop": ..}} on the real rows `test`."""
        x = self.encoder.encode(test)
        y = test[self.label].to_numpy(np.int64)
        s = test[self.sensitive].to_numpy()
        out = {}
        for name, predict in predictors.items():
            pred = predict(x) if not getattr(predict, "needs_sensitive", False) else predict(x, s)
            out[name] = {
                "acc": 100 * metrics.accuracy(y, pred),
                "r_dp": metrics.demographic_parity_ratio(y, pred, sensitive=s),
                "r_eop": metrics.equal_opportunity_ratio(y, pred, sensitive=s),
            }
        return out

    def probe(self, key, frame: pd.DataFrame) -> metrics.SensitiveProbe:
        """The leakage probe of sex, trained on the real rows `frame`."""
        return metrics.fit_sensitive_probe(
            key, self.encoder.encode(frame), frame[self.sensitive].to_numpy()
        )

    def anchors(self, key, frame: pd.DataFrame) -> dict:
        """fairlearn's anchors trained on the real rows `frame`: {name: predict}."""
        from fairlearn.postprocessing import ThresholdOptimizer
        from fairlearn.reductions import DemographicParity, ExponentiatedGradient
        from sklearn.linear_model import LogisticRegression

        # float64: fairlearn's ThresholdOptimizer writes float64 scores into a frame of the
        # input's dtype, which pandas >= 3 refuses for float32.
        x = self.encoder.encode(frame).astype(np.float64)
        y = frame[self.label].to_numpy(np.int64)
        s = frame[self.sensitive].to_numpy()
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        out = {}
        for name, kind, bound in ANCHORS:
            base = LogisticRegression(max_iter=2000)
            if kind == "eg":
                model = ExponentiatedGradient(base, DemographicParity(difference_bound=bound))
                model.fit(x, y, sensitive_features=s)
                out[name] = lambda x, m=model: m.predict(x.astype(np.float64), random_state=seed)
            else:
                model = ThresholdOptimizer(
                    estimator=base, constraints="demographic_parity", predict_method="predict_proba"
                )
                model.fit(x, y, sensitive_features=s)

                def predict(x, s, m=model):
                    return m.predict(x.astype(np.float64), sensitive_features=s, random_state=seed)

                predict.needs_sensitive = True
                out[name] = predict
        return out


# ------------------------------------------------------------------------ the runner


def point_tag(point: dict) -> str:
    """A grid point as a stable text key ("-" for the empty point)."""
    return ",".join(f"{k}={point[k]}" for k in sorted(point)) or "-"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=," else "_" for c in text)


class Runner:
    """Fits generators on source rows (cached per fit), scores every grid point."""

    def __init__(self, out: Path, preset_name: str, progress: bool, overwrite: bool = False):
        self.out, self.preset_name, self.progress = out, preset_name, progress
        self.overwrite = overwrite
        self.preset = PRESETS[preset_name]
        self.adult = datasets.load_adult()
        self.evaluator = Evaluator(self.adult)
        (out / "fits").mkdir(parents=True, exist_ok=True)
        (out / "cells").mkdir(parents=True, exist_ok=True)

    def rows_of(self, domains) -> pd.DataFrame:
        return self.adult.frame[self.adult.frame["race"].isin(domains)].reset_index(drop=True)

    def split(self, domains, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training rows, validation rows): a stratified 80/20 split of the rows of
        `domains` by (race, sex, income), fixed by the seed (holdout selection)."""
        rows = self.rows_of(domains)
        strata = rows["race"] + "|" + rows["sex"] + "|" + rows["income"].astype(str)
        _, codes = np.unique(strata.to_numpy(), return_inverse=True)
        key = jax.random.fold_in(jax.random.key(seed), 7)
        train, val = classifiers.stratified_split(key, codes, 0.2)
        return rows.iloc[train].reset_index(drop=True), rows.iloc[val].reset_index(drop=True)

    def fit_stamp(self, method: Method, excluded: tuple, seed: int) -> tuple[Path, dict]:
        """(path, "run" stamp) of the fit record of `method` without `excluded`, `seed`."""
        owner_method = self._owner(method)
        owner = owner_method.name
        fit = {
            "method": owner,
            "fit_options": owner_method.fit_options,
            # The generator's whole configuration, so that a changed generator preset
            # invalidates the records made with the old one.
            "config": None
            if owner_method.generator is None
            else dataclasses.asdict(self._config(owner_method)),
            "points": [point_tag(p) for p in self._points(owner)],
            "excluded": list(excluded),
        }
        stamp = common.run_stamp(NAME, self.preset_name, seed, self.preset, drop=("seeds",))
        stamp = json.loads(json.dumps(common.jsonable({**stamp, "fit": fit})))
        path = self.out / "fits" / (_slug(f"{owner}|{'+'.join(excluded)}|{seed}") + ".json")
        return path, stamp

    def fit_record(self, method: Method, excluded: tuple, seed: int) -> dict:
        """Scores of every grid point of `method`, trained without the domains `excluded`,
        on each excluded domain (and, with holdout selection, on the held-out source rows
        under "val"); cached as JSON with what it depends on, reused only when it matches."""
        path, stamp = self.fit_stamp(method, excluded, seed)
        cached = common.cached_record(path, stamp, overwrite=self.overwrite)
        if cached is not None:
            return cached
        owner_method = self._owner(method)
        owner = owner_method.name
        key = jax.random.fold_in(jax.random.key(seed), zlib.crc32("+".join(excluded).encode()))
        fit_key, sample_key, clf_key, probe_key = jax.random.split(key, 4)
        start = time.time()
        sources = [d for d in self.preset.domains if d not in excluded]
        if self.preset.selection == "holdout":
            train, val = self.split(sources, seed)
        else:
            train, val = self.rows_of(sources), None
        frames = {d: self.rows_of([d]) for d in excluded}
        if val is not None:
            frames["val"] = val
        probe = self.evaluator.probe(probe_key, train)
        if owner_method.generator is None:
            tables = {"-": train}
        else:
            model = self._fit(owner_method, fit_key, train)
            tables = {
                point_tag(p): model.sample(sample_key, self.preset.n_synthetic, **p)
                for p in self._points(owner)
            }
        scores = {}
        for tag, table in tables.items():
            fitted = self.evaluator.fit(clf_key, table)
            scores[tag] = {name: self.evaluator.score(fitted, f) for name, f in frames.items()}
            if owner_method.generator is not None:
                scores[tag]["leakage"] = probe.read(self.evaluator.encoder.encode(table))
        if owner_method.generator is None:
            anchors = self.evaluator.anchors(clf_key, train)
            for name, predict in anchors.items():
                scores[name] = {
                    f: self.evaluator.score(dict.fromkeys(CLASSIFIERS, predict), frame)
                    for f, frame in frames.items()
                }
        record = {
            "scores": scores,
            "probe": probe.reference,
            "seconds": time.time() - start,
            "train_rows": len(train),
        }
        return common.write_record(path, record, stamp, clean=False)

    def _owner(self, method: Method) -> Method:
        """The method whose fits `method` uses: itself, or the one its `fit_as` names."""
        owner = method.fit_as or method.name
        return next(m for m in methods(self.preset) if m.name == owner)

    def _points(self, owner: str) -> list[dict]:
        """Every grid point of every method that shares `owner`'s fits."""
        sharing = [m for m in methods(self.preset) if (m.fit_as or m.name) == owner]
        unique = {point_tag(p): p for m in sharing for p in m.points}
        return list(unique.values())

    @staticmethod
    def _config(method: Method):
        """The generator config of `method`: its preset with the options it has."""
        options = dict(method.fit_options)
        config = generators.get(method.generator).PRESETS[options.pop("generator_preset")]
        fields = {f.name for f in dataclasses.fields(config)}
        return dataclasses.replace(config, **{k: v for k, v in options.items() if k in fields})

    def _fit(self, method: Method, key, train: pd.DataFrame):
        module = generators.get(method.generator)
        data = TabularDataset(train, self.adult.schema, name="adult-sources")
        return module.fit(key, data, config=self._config(method), progress=self.progress)

    def cell(self, method: Method, target: str, seed: int) -> dict:
        """Every grid point's validation and test scores for `target`, and the selected
        point of each of the method's rows."""
        record = self.fit_record(method, (target,), seed)
        final = record["scores"]
        if method.fit_as:  # the owner's fit scores the owner's grid: keep this row's points
            own = {point_tag(p) for p in method.points}
            final = {tag: score for tag, score in final.items() if tag in own}
        test = {tag: score[target] for tag, score in final.items()}
        if self.preset.selection == "holdout":
            val = {tag: [score["val"]] for tag, score in final.items()}
        else:
            val = {tag: [] for tag in test}
            sources = [d for d in self.preset.domains if d != target]
            for v in sources if len(method.points) > 1 else ():
                pair = self.fit_record(method, tuple(sorted((target, v))), seed)["scores"]
                for tag in val:
                    val[tag].append(pair[tag][v])
        leakage = {tag: score.get("leakage") for tag, score in final.items()}
        selected = {
            f"{guide}|{rule}": select(method, val, guide, rule) for guide, rule in method.rows
        }
        return {
            "method": method.name,
            "target": target,
            "seed": seed,
            "test": test,
            "val": {tag: _mean_scores(v) for tag, v in val.items() if v},
            "leakage": leakage,
            "probe": record["probe"],
            "selected": selected,
        }


def _mean_scores(scores: list[dict]) -> dict:
    """Mean over validation sets of {classifier: {metric: value}}."""
    return {
        clf: {m: float(np.mean([s[clf][m] for s in scores])) for m in scores[0][clf]}
        for clf in scores[0]
    }


def select(method: Method, val: dict, guide: str, rule: str) -> str:
    """The grid point (tag) a row uses: "accuracy" = highest mean validation MLP accuracy;
    "fair" = the same among points with mean validation R_DP >= 0.8, else highest R_DP.
    Candidates: the method's points with that guide (and the guide-free lambda_z = 0)."""
    candidates = [
        point_tag(p)
        for p in method.points
        if not guide or p.get("guide") == guide or p.get("lambda_z") == 0.0
    ]
    if len(candidates) == 1 or not rule:
        return candidates[0]
    means = {tag: _mean_scores(val[tag])["mlp"] for tag in candidates}
    if rule == "fair":
        fair = [t for t in candidates if means[t]["r_dp"] >= FOUR_FIFTHS]
        if not fair:
            return max(candidates, key=lambda t: means[t]["r_dp"])
        candidates = fair
    return max(candidates, key=lambda t: means[t]["acc"])


# ----------------------------------------------------------------------------- tables


def row_label(method: str, guide: str, rule: str) -> str:
    return method + (f" ({guide}, {rule} rule)" if guide and rule else f" ({rule} rule)" if
                     rule else "")  # fmt: skip


def long_rows(cells: list[dict]) -> pd.DataFrame:
    """One row per (table row, classifier, target, seed) with acc, r_dp, r_eop, leakage."""
    out = []
    for c in cells:
        for key, tag in c["selected"].items():
            guide, rule = key.split("|")
            # The reference row's leakage: the probe read on held-out real rows.
            leak = c["leakage"].get(tag) or (c["probe"] if c["method"] == "real" else {})
            for clf in CLASSIFIERS:
                out.append({
                    "method": c["method"], "guide": guide, "selection": rule, "classifier": clf,
                    "target": c["target"], "seed": c["seed"], **c["test"][tag][clf],
                    "leakage": leak.get("confidence", np.nan), "point": tag,
                })  # fmt: skip
        if c["method"] == "real":
            for name in (t for t in c["test"] if t != "-"):
                for clf in CLASSIFIERS:
                    out.append({
                        "method": name, "guide": "", "selection": "", "classifier": clf,
                        "target": c["target"], "seed": c["seed"], **c["test"][name][clf],
                        "leakage": np.nan, "point": "-",
                    })  # fmt: skip
    return pd.DataFrame(out)


def curve_rows(cells: list[dict]) -> pd.DataFrame:
    """Every grid point of every generator: one row per (method, point, classifier,
    target, seed)."""
    out = []
    for c in cells:
        if c["method"] == "real":
            continue
        for tag, scores in c["test"].items():
            point = dict(kv.split("=") for kv in tag.split(",")) if tag != "-" else {}
            for clf in CLASSIFIERS:
                out.append({
                    "method": c["method"], "guide": point.get("guide", ""),
                    "lambda_z": float(point.get("lambda_z", np.nan)),
                    "lambda_y": float(point.get("lambda_y", np.nan)), "classifier": clf,
                    "target": c["target"], "seed": c["seed"], **scores[clf],
                    "leakage": (c["leakage"].get(tag) or {}).get("confidence", np.nan),
                })  # fmt: skip
    return pd.DataFrame(out)


def average(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over targets within each seed, then mean and 95% t-interval half-width over
    seeds (empty with one seed). Columns: keys, acc, acc_ci, r_dp, r_dp_ci, r_eop,
    r_eop_ci, leakage, targets, seeds."""
    values = ["acc", "r_dp", "r_eop", "leakage"]
    per_seed = frame.groupby([*keys, "seed"], sort=False, dropna=False).agg(
        **{v: (v, "mean") for v in values}, targets=("target", "nunique")
    ).reset_index()  # fmt: skip
    rows = []
    for group, part in per_seed.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        n = len(part)
        for v in values:
            row[v] = part[v].mean()
            if v != "leakage":
                row[f"{v}_ci"] = T_975[n - 1] * part[v].std() / np.sqrt(n) if n > 1 else np.nan
        row["targets"], row["seeds"] = int(part["targets"].min()), n
        rows.append(row)
    cols = [*keys, "acc", "acc_ci", "r_dp", "r_dp_ci", "r_eop", "r_eop_ci", "leakage"]
    return pd.DataFrame(rows)[[*cols, "targets", "seeds"]]


def _cell(r, with_ci: bool) -> str:
    text = f"{r.acc:.2f} / {r.r_dp:.2f} / {r.r_eop:.2f}"
    if with_ci and np.isfinite(r.acc_ci):
        text += f" (± {r.acc_ci:.2f} / {r.r_dp_ci:.2f} / {r.r_eop_ci:.2f})"
    return text


def to_markdown(long: pd.DataFrame, classifier: str, targets) -> str:
    """Rows x (targets, Avg): ACC / R_DP / R_EOp, mean over seeds (± 95% half-width)."""
    part = long[long["classifier"] == classifier]
    keys = ["method", "guide", "selection"]
    cols = [*targets, "Avg"] if len(targets) > 1 else list(targets)
    lines = ["| row | " + " | ".join(SHORT.get(t, t) for t in cols) + " | leakage |",
             "|" + "---|" * (len(cols) + 2)]  # fmt: skip
    avg = average(part, keys)
    for r in avg.itertuples():
        cells = []
        for t in cols:
            sub = part[(part[keys] == [r.method, r.guide, r.selection]).all(axis=1)]
            sub = sub if t == "Avg" else sub[sub["target"] == t]
            if sub.empty:
                cells.append("–")
                continue
            cells.append(_cell(next(average(sub, keys).itertuples()), with_ci=True))
        leak = "–" if not np.isfinite(r.leakage) else f"{r.leakage:.2f}"
        label = row_label(r.method, r.guide, r.selection)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {leak} |")
    return "\n".join(lines)


def paper_markdown() -> str:
    cols = [*DOMAINS, "Avg"]
    lines = ["| Method | " + " | ".join(SHORT.get(t, t) for t in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]  # fmt: skip
    for method, values in PAPER.items():
        lines.append(
            f"| {method} | " + " | ".join(f"{a:.2f}/{d:.2f}/{e:.2f}" for a, d, e in values) + " |"
        )
    return "\n".join(lines)


def plot(curve: pd.DataFrame, long: pd.DataFrame, path: Path, target: str | None) -> None:
    """Pareto plot (PNG): R_DP and R_EOp against accuracy for every grid point of every
    generator (FADM curves joined in lambda_z order), the anchors and the reference;
    selected points circled. `target` None = averaged over targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def prep(frame, keys):
        frame = frame[frame["classifier"] == "mlp"]
        if target is not None:
            frame = frame[frame["target"] == target]
        return average(frame, keys)

    pts = prep(curve, ["method", "guide", "lambda_z", "lambda_y"])
    rows = prep(long, ["method", "guide", "selection"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in ((axes[0], "r_dp", "R_DP"), (axes[1], "r_eop", "R_EOp")):
        for (method, guide, ly), part in pts.groupby(["method", "guide", "lambda_y"], sort=False):
            part = part.sort_values("lambda_z")
            if method.startswith("FADM"):
                name = f"{method} {guide} λy={ly:g}" if guide else f"{method} λy={ly:g}"
                ax.plot(part["acc"], part[metric], "-o", ms=3, label=name)
                for r in part.itertuples():
                    ax.annotate(f"{r.lambda_z:g}", (r.acc, getattr(r, metric)), fontsize=6)
        for r in rows.itertuples():
            if r.method.startswith("FADM") and r.selection:
                ax.plot(r.acc, getattr(r, metric), "o", mfc="none", mec="k", ms=9)
            elif not r.method.startswith("FADM"):
                marker = "*" if r.method == "real" else "s" if "EG" in r.method or "Thresh" in \
                    r.method else "^"  # fmt: skip
                ax.plot(r.acc, getattr(r, metric), marker, label=r.method)
        ax.axhline(FOUR_FIFTHS, color="grey", lw=0.5, ls="--")
        ax.set_xlabel("accuracy on the unseen domain (%)")
        ax.set_ylabel(label)
    axes[1].legend(fontsize=6, loc="best")
    title = "average over targets" if target is None else target
    fig.suptitle(f"Adult, leave one race domain out, MLP downstream ({title}); circles: selected")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ------------------------------------------------------------------------------- main


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(
        prog="fairjax experiment fadm-adult", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--methods", help="comma-separated generator names (default: all)")
    parser.add_argument("--targets", help="comma-separated target domains (default: preset's)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    common.add_output_options(parser, NAME)
    parser.add_argument("--progress", action="store_true", help="show training progress bars")
    args = parser.parse_args(argv)

    preset = PRESETS[args.preset]
    targets = preset.targets
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else preset.seeds
    if args.targets:
        targets = tuple(t.strip() for t in args.targets.split(","))
        unknown = [t for t in targets if t not in preset.domains]
        if unknown:
            raise FairjaxError(f"--targets {unknown} are not among {list(preset.domains)}")
    rows = methods(preset)
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",")]
        unknown = [m for m in wanted if m not in {r.name for r in rows}]
        if unknown:
            raise FairjaxError(f"--methods {unknown} unknown; they are {[r.name for r in rows]}")
        rows = [r for r in rows if r.name in wanted]
    out = common.out_folder(args, NAME)
    # The tables are this run's own when every record already in --out is this preset's.
    records = sorted((out / "fits").glob("*.json")) if (out / "fits").is_dir() else []
    owned = bool(records) and all(
        (common.read_record(r).get("run") or {}).get("preset") == args.preset for r in records
    )
    replace = common.check_tables(
        out, ["summary.csv", "table1.csv", "table1.md", "curve.csv", "pareto_avg.png"],
        overwrite=args.overwrite, owned=owned, will_compute=True,
    )  # fmt: skip
    runner = Runner(out, args.preset, args.progress, overwrite=args.overwrite)
    start = time.time()
    cells = []
    for method, target, seed in itertools.product(rows, targets, seeds):
        t0 = time.time()
        cell = runner.cell(method, target, seed)
        cell_path = out / "cells" / (_slug(f"{method.name}|{target}|{seed}") + ".json")
        outputs.write_text(cell_path, json.dumps(common.jsonable(cell), indent=1), overwrite=True)
        cells.append(cell)
        picks = ", ".join(f"{k}: {v}" for k, v in cell["selected"].items())
        print(f"[{time.time() - start:7.0f}s] {method.name:<14} {SHORT[target]:<6} seed {seed}"
              f" ({time.time() - t0:.0f}s) {picks}", flush=True)  # fmt: skip
    wall = time.time() - start
    long, curve = long_rows(cells), curve_rows(cells)
    summary = average(long, ["method", "guide", "selection", "classifier"])
    columns = ["method", "guide", "selection", "classifier", "acc", "acc_ci", "r_dp", "r_dp_ci",
               "r_eop", "r_eop_ci", "leakage"]  # fmt: skip
    curve_avg = average(curve, ["method", "guide", "lambda_z", "lambda_y", "classifier"])
    for name, frame in (("summary.csv", summary[columns]), ("table1.csv", long),
                        ("curve.csv", curve_avg)):  # fmt: skip
        with common.table_file(out / name, overwrite=replace) as tmp:
            frame.to_csv(tmp, index=False)
    command = f"python -m experiments.fadm_adult --preset {args.preset}" + "".join(
        f" --{k} {v}" for k, v in (("out", args.out), ("methods", args.methods),
                                   ("targets", args.targets), ("seeds", args.seeds)) if v
    )  # fmt: skip
    text = (
        f"# FADM Table 1 on Adult — preset `{args.preset}`\n\n"
        f"Command: `{command}`; seeds {list(seeds)}; {preset.n_synthetic} synthetic "
        f"rows per table; selection `{preset.selection}` (source domains only); this run's "
        f"wall time {wall:.0f} s (cached fits count 0).\n\n"
        "Cells: ACC (%) / R_DP / R_EOp on the unseen domain, mean over seeds (± half-width "
        "of a 95% t-interval over seeds). Leakage: mean |2p − 1| of a sex probe trained on "
        "the real training rows, read on the generated rows (real row: on held-out real "
        "rows is in the fit records).\n\n"
        f"## Downstream MLP (the declared classifier)\n\n{to_markdown(long, 'mlp', targets)}\n\n"
        f"## Downstream logistic regression\n\n{to_markdown(long, 'logistic', targets)}\n\n"
        f"## The paper's Table 1 (arXiv 2406.09495)\n\n{paper_markdown()}\n"
    )
    common.write_table(out / "table1.md", text, overwrite=replace)
    for t in [None, *targets] if len(targets) > 1 else [None]:
        name = "pareto_avg.png" if t is None else f"pareto_{_slug(SHORT[t])}.png"
        with common.table_file(out / name, overwrite=replace) as tmp:
            plot(curve, long, tmp, t)
    print(text)
    return summary


if __name__ == "__main__":
    common.entry_point(main)
