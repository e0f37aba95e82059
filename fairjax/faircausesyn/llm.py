"""The external LLM backend of FairCauseSyn: prompt, OpenAI-compatible chat call, strict parser.

FairCauseSyn asks a large language model for synthetic rows, showing it real rows balanced
over the protected attribute x outcome cells and the causal roles of the columns, and in
refinement rounds the causal fairness measures of its previous batch against a target.

    backend = LLMBackend(url="http://localhost:8000/v1", model="llama-3.1-8b-instruct")
    rows, report = generate_llm(jax.random.key(0), backend, frame, roles, n=200)
    report.reasons          # e.g. {"unknown_category": 3, "prose": 1}

Only the standard library speaks HTTP (`urllib.request`); any server with the OpenAI
`/chat/completions` route works (vLLM, llama.cpp, Ollama, OpenAI). The API key is read from
the environment variable `LLMBackend.api_key_env` at request time and is never stored on the
backend, put into an exception message, or chained into a traceback.

References:
  Nagesh, Wang & Rahmani (2025), FairCauseSyn: Towards Causally Fair LLM-Augmented Synthetic
  Data Generation, arXiv 2506.19082 (prompting with balanced examples, refinement by
  causal-fairness feedback); Plečko & Bareinboim (2022), Causal Fairness Analysis,
  arXiv 2207.11385 (the roles X, Z, W, Y and the measures tv, ctfde, ctfie, ctfse, ett).
"""

from __future__ import annotations

import csv
import dataclasses
import http.client
import json
import math
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fairjax.causal.decompose import check_key
from fairjax.causal.estimators import MEASURES
from fairjax.errors import FairjaxError
from fairjax.faircausesyn.roles import CausalRoles, balanced_rows
from fairjax.persist import plain

# Integer-valued numeric columns with at most this many distinct values (0/1 flags, codes
# 1..5) only accept their observed values: a range would let the model invent new codes.
MAX_CODES = 10

# Reasons a line of the reply does not become a row (the keys of ParseReport.reasons).
REASONS = (
    "wrong_column_count",  # a line inside the CSV block with the wrong number of fields
    "prose",  # a non-blank line before or after the CSV block
    "unknown_category",  # a categorical value not seen in the real data
    "not_a_number",  # a numeric field that float() rejects (empty fields included)
    "non_finite",  # nan or inf
    "not_integer",  # a fractional value in an integer-valued column
    "out_of_range",  # outside [min, max] of the real column
    "unseen_value",  # an integer code not among the column's (<= MAX_CODES) observed values
)


class ColumnSpec(NamedTuple):
    """What values a generated column may take, derived from the real column.

    Attributes:
      kind: "categorical" (string, boolean or pandas-categorical columns) or "numeric"
        (every other numeric dtype).
      values: the allowed values, sorted, as Python objects of the real column's type:
        the categories of a categorical column, or the observed values of an
        integer-valued numeric column with at most `MAX_CODES` distinct values; else None.
      low, high: min and max of a numeric column (None for categorical ones).
      integer: whether every real value of a numeric column is a whole number (int dtypes,
        or floats such as 120.0); generated values must then be whole numbers too.
      dtype: the real column's dtype; parsed rows are cast back to it.
    """

    kind: str
    values: tuple | None
    low: float | int | None
    high: float | int | None
    integer: bool
    dtype: Any


class ParseReport(NamedTuple):
    """What became of the lines of one or more replies.

    Attributes:
      kept: rows that passed every check.
      dropped: non-blank lines that did not become a row (prose lines included; the header
        and ``` fence lines are neither kept nor dropped); equals sum(reasons.values()).
      reasons: reason (one of `REASONS`) -> number of lines dropped for it; a row is counted
        once, under the reason of its first bad field.
    """

    kept: int
    dropped: int
    reasons: dict[str, int]


def _merge(a: ParseReport, b: ParseReport) -> ParseReport:
    reasons = Counter(a.reasons)
    reasons.update(b.reasons)
    return ParseReport(a.kept + b.kept, a.dropped + b.dropped, dict(reasons))


def _is_categorical(dtype: Any) -> bool:
    return not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def column_specs(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, ColumnSpec]:
    """The `ColumnSpec` of each of `columns`, from the real rows.

    Non-numeric, boolean and pandas-categorical columns are categorical with their observed
    values; other numeric columns are numeric with their [min, max], integer when every
    value is whole, and restricted to their observed values when integer with at most
    `MAX_CODES` (10) distinct values.

    Args:
      frame: real rows, without missing values in `columns`.
      columns: column names.

    Returns:
      dict column -> ColumnSpec, in the order of `columns`.
    """
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise FairjaxError("frame must be a pandas DataFrame with at least one row.")
    specs = {}
    for c in columns:
        if c not in frame.columns:
            raise FairjaxError(f"column {c!r} not found in frame; columns are {list(frame)}.")
        col = frame[c]
        if col.isna().any():
            raise FairjaxError(
                f"column {c!r} has {int(col.isna().sum())} missing values; drop or impute them "
                "before generating rows from it."
            )
        if _is_categorical(col.dtype):
            values = tuple(sorted((plain(v) for v in pd.unique(col)), key=str))
            specs[c] = ColumnSpec("categorical", values, None, None, False, col.dtype)
            continue
        x = col.to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise FairjaxError(f"column {c!r} has infinite values.")
        integer = bool(np.all(x == np.round(x)))
        low, high = (int(x.min()), int(x.max())) if integer else (float(x.min()), float(x.max()))
        codes = np.unique(x)
        values = tuple(int(v) for v in codes) if integer and len(codes) <= MAX_CODES else None
        specs[c] = ColumnSpec("numeric", values, low, high, integer, col.dtype)
    return specs


@dataclasses.dataclass(frozen=True)
class LLMBackend:
    """An OpenAI-compatible chat-completions server and how to call it.

    Attributes:
      url: base URL, e.g. "http://localhost:8000/v1"; requests go to {url}/chat/completions.
      model: model name sent with every request.
      api_key_env: environment variable holding the API key, read at request time; when it
        is unset or empty no Authorization header is sent (local servers).
      timeout_s: seconds to wait for one reply.
      max_retries: extra attempts after a connection error, timeout, HTTP 429 or 5xx.
      backoff_s: seconds before the first retry; doubled before each further one.
      temperature: sampling temperature, >= 0.
      max_tokens: reply length limit per request, in tokens.
      rows_per_request: most rows asked for in one request.
    """

    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    temperature: float = 0.7
    max_tokens: int = 4096
    rows_per_request: int = 40

    def __post_init__(self):
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise FairjaxError(
                f"url must start with http:// or https://, e.g. 'http://localhost:8000/v1'; "
                f"got {self.url!r}."
            )
        for name in ("model", "api_key_env"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise FairjaxError(f"{name} must be a non-empty string, got {v!r}.")
        for name, low in (("max_retries", 0), ("max_tokens", 1), ("rows_per_request", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise FairjaxError(f"{name} must be an integer >= {low}, got {v!r}.")
        for name, positive in (("timeout_s", True), ("backoff_s", False), ("temperature", False)):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (positive and v == 0):
                bound = "> 0" if positive else ">= 0"
                raise FairjaxError(f"{name} must be a finite number {bound}, got {v!r}.")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL."""
        return self.url.rstrip("/") + "/chat/completions"


# --- prompt ---------------------------------------------------------------------------------


def _names(cols: Sequence[str]) -> str:
    return ", ".join(cols) if cols else "none"


def _describe(name: str, spec: ColumnSpec) -> str:
    if spec.kind == "categorical":
        return f"- {name}: categorical, one of: {', '.join(str(v) for v in spec.values)}"
    if spec.values is not None:
        return f"- {name}: integer, one of: {', '.join(str(v) for v in spec.values)}"
    what = "integer" if spec.integer else "number"
    return f"- {name}: {what} from {spec.low!r} to {spec.high!r}"


def build_messages(
    roles: CausalRoles,
    specs: Mapping[str, ColumnSpec],
    examples: pd.DataFrame,
    n_rows: int,
    *,
    feedback: str | None = None,
) -> list[dict]:
    """The FairCauseSyn prompt as chat messages (a system and a user message).

    The user message names the causal role of every column, lists each column's type and
    allowed values or range, shows `examples` as CSV with a header, asks for exactly
    `n_rows` new rows in that format, and ends with `feedback` in refinement rounds.
    The text depends only on the arguments.

    Args:
      roles: causal roles; the columns are `roles.order`.
      specs: column -> ColumnSpec for every column of `roles.order` (`column_specs`).
      examples: real rows (e.g. `balanced_rows`) with the columns of `roles.order`.
      n_rows: rows to ask for, >= 1.
      feedback: refinement text (`feedback_text`), or None in the first round.

    Returns:
      [{"role": "system", "content": ...}, {"role": "user", "content": ...}].
    """
    columns = list(roles.order)
    missing = [c for c in columns if c not in specs]
    if missing:
        raise FairjaxError(f"specs has no entry for column(s) {missing}; use column_specs.")
    missing = [c for c in columns if c not in examples.columns]
    if missing:
        raise FairjaxError(f"examples lack column(s) {missing}; columns are {list(examples)}.")
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise FairjaxError(f"n_rows must be an integer >= 1, got {n_rows!r}.")
    header = ",".join(columns)
    system = (
        "You generate realistic synthetic rows of a tabular data set. Answer with CSV only: "
        "one header line, then one line per row, with no explanations, no numbering and no "
        "code."
    )
    user = "\n".join(
        [
            f"The table has {len(columns)} columns. Their roles in a causal model of fairness:",
            f"- Protected attribute X: {roles.X}, with the two values x0 = {roles.x0} and "
            f"x1 = {roles.x1}.",
            f"- Confounders Z: {_names(roles.Z)}. They are common causes of X and of the "
            "outcome; X does not cause them.",
            f"- Mediators W: {_names(roles.W)}. They are caused by X (and Z) and in turn "
            "affect the outcome, so part of the effect of X on the outcome passes through "
            "them (X -> W -> Y).",
            f"- Outcome Y: {roles.Y}. It depends on X directly, on the mediators and on the "
            "confounders.",
            "",
            "Columns, in this order:",
            *(_describe(c, specs[c]) for c in columns),
            "",
            f"Real example rows, balanced over {roles.X} x {roles.Y}:",
            examples[columns].to_csv(index=False, lineterminator="\n").rstrip("\n"),
            "",
            f"Generate exactly {n_rows} new rows that look like they come from the same "
            "population and keep the causal relationships described above. Do not copy the "
            "examples. Use only the allowed values and ranges. Answer in the same CSV format, "
            f"starting with the header line:\n{header}",
        ]
    )
    if feedback:
        user += f"\n\nFeedback on your previous rows:\n{feedback}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_MEASURE_TEXT = {
    "tv": "total variation, P(Y=1 | x1) - P(Y=1 | x0)",
    "ctfde": "direct effect of X on Y, not through the mediators",
    "ctfie": "indirect effect of X on Y through the mediators W",
    "ctfse": "spurious effect, the part of the X-Y association due to the confounders Z",
    "ett": "total causal effect of X on Y for the x0 group",
}

_FAIR_TEXT = {
    "tv": "make the rate of Y = 1 the same for both values of X.",
    "ctfde": "make the outcome not depend on X directly: rows that agree on the confounders "
    "and mediators should have the same chance of Y = 1 whatever their X.",
    "ctfie": "make the mediators' distribution the same for both values of X (given the "
    "confounders).",
    "ctfse": "make the confounders independent of X: their distribution should be the same "
    "for both values of X.",
    "ett": "make the outcome of the x0 group not change if their X were x1: neither "
    "directly nor through the mediators.",
}


def feedback_text(
    measures_syn: Mapping[str, float], measures_target: Mapping[str, float], *, mode: str
) -> str:
    """A refinement instruction: each measure on the last batch against its target.

    Args:
      measures_syn: measure -> value on the last synthetic batch (keys from
        fairjax.causal.MEASURES: tv, ctfde, ctfie, ctfse, ett; probability differences).
      measures_target: measure -> target value, with the same keys.
      mode: "faithful" (the targets are the real data's effects: reproduce them) or
        "fair" (the targets are the fair values, usually 0: move the effects toward them).

    Returns:
      text for `build_messages(..., feedback=)`; one line per measure in `MEASURES` order.
    """
    if mode not in ("faithful", "fair"):
        raise FairjaxError(f"mode must be 'faithful' or 'fair', got {mode!r}.")
    for arg, d in (("measures_syn", measures_syn), ("measures_target", measures_target)):
        unknown = sorted(set(d) - set(MEASURES), key=str)
        if unknown:
            raise FairjaxError(f"{arg} has unknown measure(s) {unknown}; known: {MEASURES}.")
        bad = {k: v for k, v in d.items() if not _finite_number(v)}
        if bad:
            raise FairjaxError(f"{arg} must map measures to finite numbers; got {bad}.")
    if set(measures_syn) != set(measures_target):
        raise FairjaxError(
            f"measures_syn has {sorted(measures_syn)} but measures_target has "
            f"{sorted(measures_target)}; they must name the same measures."
        )
    if not measures_syn:
        raise FairjaxError(f"measures_syn is empty; pass at least one of {MEASURES}.")
    names = [m for m in MEASURES if m in measures_syn]
    lines = ["Causal measures of your previous rows (X = protected attribute, Y = outcome):"]
    for m in names:
        syn, target = float(measures_syn[m]), float(measures_target[m])
        gap = syn - target
        move = "keep it" if gap == 0 else f"{'lower' if gap > 0 else 'raise'} it by {abs(gap):.3f}"
        lines.append(
            f"- {m} ({_MEASURE_TEXT[m]}): measured {syn:+.3f}, target {target:+.3f}; {move}."
        )
    if mode == "faithful":
        lines.append(
            "The targets are the effects measured on the real data. Generate rows whose "
            "relationships between X, the confounders, the mediators and Y reproduce them: "
            "neither remove nor exaggerate any effect."
        )
    else:
        lines.append("Generate fairer rows, moving each measure toward its target:")
        lines.extend(f"- {m}: {_FAIR_TEXT[m]}" for m in names)
        lines.append("Keep every other relationship between the columns realistic.")
    return "\n".join(lines)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v)


# --- parser ---------------------------------------------------------------------------------


def _fields(line: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]


def _check(token: str, spec: ColumnSpec, lookup: dict[str, Any]) -> tuple[Any, str | None]:
    """(value, None) for a valid token, else (None, reason)."""
    if spec.kind == "categorical":
        return (lookup[token], None) if token in lookup else (None, "unknown_category")
    try:
        x = float(token)
    except ValueError:
        return None, "not_a_number"
    if not math.isfinite(x):
        return None, "non_finite"
    if spec.integer and x != round(x):
        return None, "not_integer"
    if spec.values is not None:
        return (int(x), None) if int(x) in spec.values else (None, "unseen_value")
    if not spec.low <= x <= spec.high:
        return None, "out_of_range"
    return (int(x) if spec.integer else x), None


def parse_rows(
    text: str, specs: Mapping[str, ColumnSpec], columns: Sequence[str]
) -> tuple[pd.DataFrame, ParseReport]:
    """The valid rows of an LLM reply, strictly checked against the real data.

    The reply is read line by line as CSV (quotes allowed). ``` fence lines and blank lines
    are skipped. A header line (the column names, in any order) is skipped and sets the
    order of the fields in the lines after it; without one, fields are in `columns` order.
    The CSV block runs from the first to the last line with the right number of fields or
    a header; non-blank lines outside it are "prose", lines inside it with another number
    of fields are "wrong_column_count". A row is kept only if every field is valid:
    categorical values must match a real category exactly (after trimming spaces); numbers
    must be finite, whole for integer columns, within [low, high] and among `values` where
    the spec lists them. Nothing is evaluated.

    Args:
      text: the reply.
      specs: column -> ColumnSpec (`column_specs` of the real data).
      columns: the columns of the reply and of the result.

    Returns:
      (rows, report): DataFrame [kept rows, columns] with the real dtypes and a fresh
      index, and the ParseReport.
    """
    columns = list(columns)
    missing = [c for c in columns if c not in specs]
    if missing:
        raise FairjaxError(f"specs has no entry for column(s) {missing}; use column_specs.")
    if not isinstance(text, str):
        raise FairjaxError(f"text must be a string, got {type(text).__name__}.")
    lookups = {
        c: {str(v): v for v in specs[c].values} for c in columns if specs[c].kind == "categorical"
    }
    lines = []  # (fields, is_header) of the non-blank, non-fence lines
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("```"):
            continue
        try:
            fields = _fields(line)
        except csv.Error:
            fields = [line]
        is_header = len(fields) == len(columns) and set(fields) == set(columns)
        lines.append((fields, is_header))
    in_block = [len(f) == len(columns) for f, _ in lines]
    first = in_block.index(True) if any(in_block) else len(lines)
    last = len(lines) - in_block[::-1].index(True) if any(in_block) else len(lines)
    reasons: Counter[str] = Counter(prose=first + len(lines) - last)
    order = columns
    kept: dict[str, list] = {c: [] for c in columns}
    for fields, is_header in lines[first:last]:
        if is_header:
            order = fields
            continue
        if len(fields) != len(columns):
            reasons["wrong_column_count"] += 1
            continue
        row, reason = {}, None
        for c, token in zip(order, fields, strict=True):
            row[c], reason = _check(token, specs[c], lookups.get(c, {}))
            if reason:
                break
        if reason:
            reasons[reason] += 1
            continue
        for c in columns:
            kept[c].append(row[c])
    reasons = {r: k for r, k in reasons.items() if k}
    rows = pd.DataFrame(
        {c: pd.Series(kept[c], dtype=object).astype(specs[c].dtype) for c in columns}
    )
    return rows, ParseReport(len(rows), sum(reasons.values()), reasons)


# --- HTTP -----------------------------------------------------------------------------------


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "<redacted>") if secret else text


def _server_message(body: bytes) -> str:
    """The error message of an error reply ({"error": {"message": ...}} or raw text)."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return str(err)[:300]
    return text[:300]


def _content(body: bytes) -> str | None:
    """choices[0].message.content of a chat-completions reply, or None if malformed."""
    try:
        content = json.loads(body.decode("utf-8"))["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def chat(
    backend: LLMBackend,
    messages: Sequence[Mapping[str, str]],
    *,
    sleep: Callable[[float], Any] = time.sleep,
) -> str:
    """The assistant's reply to `messages` from `backend`'s /chat/completions route.

    Connection errors, timeouts, HTTP 429 and 5xx are retried up to `backend.max_retries`
    times, waiting backoff_s, 2 backoff_s, 4 backoff_s, ... between attempts; other HTTP
    errors and malformed replies raise at once. The API key (if its environment variable is
    set) is sent as `Authorization: Bearer <key>` and removed from every error message.

    Args:
      backend: the server.
      messages: chat messages, each {"role": ..., "content": ...}.
      sleep: called with the seconds to wait before each retry (tests pass a recorder).

    Returns:
      choices[0].message.content of the reply.
    """
    if not isinstance(backend, LLMBackend):
        raise FairjaxError(f"backend must be an LLMBackend, got {type(backend).__name__}.")
    if not messages or not all(
        isinstance(m, Mapping) and isinstance(m.get("content"), str) for m in messages
    ):
        raise FairjaxError("messages must be a non-empty list of {'role', 'content'} dicts.")
    api_key = os.environ.get(backend.api_key_env) or None
    body = json.dumps(
        {
            "model": backend.model,
            "messages": [dict(m) for m in messages],
            "temperature": backend.temperature,
            "max_tokens": backend.max_tokens,
        }
    ).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = backend.endpoint
    attempts = backend.max_retries + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            sleep(backend.backoff_s * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=backend.timeout_s) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as e:
            message = _redact(_server_message(e.read()), api_key)
            if e.code == 429 or e.code >= 500:
                last = f"its last reply was HTTP {e.code}: {message}"
                continue
            hint = f" (check the API key in ${backend.api_key_env})" if e.code in (401, 403) else ""
            raise FairjaxError(
                f"the LLM server at {url} refused the request with HTTP {e.code}{hint}: {message}"
            ) from None
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as e:
            reason = getattr(e, "reason", e)
            last = f"it is unreachable ({_redact(str(reason), api_key)})"
            continue
        content = _content(raw)
        if content is None:
            snippet = _redact(raw[:200].decode("utf-8", errors="replace"), api_key)
            raise FairjaxError(
                f"the LLM server at {url} sent a malformed reply (expected JSON with "
                f"choices[0].message.content): {snippet!r}"
            )
        return content
    raise FairjaxError(
        f"the LLM server at {url} failed after {attempts} attempt(s): {last}. Check that it is "
        "running and that url and model are right, or raise max_retries / timeout_s."
    )


# --- generation -----------------------------------------------------------------------------


def generate_llm(
    key: jax.Array,
    backend: LLMBackend,
    frame: pd.DataFrame,
    roles: CausalRoles,
    n: int,
    *,
    feedback: str | None = None,
    examples_per_cell: int = 5,
    max_requests: int | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, ParseReport]:
    """`n` synthetic rows of the role columns from the LLM, prompted with real examples.

    Request i shows `examples_per_cell` fresh real rows per (X, Y) cell
    (`balanced_rows(fold_in(key, i), ...)`) and asks for min(rows_per_request, rows still
    missing) rows; valid rows accumulate until there are `n`.

    Args:
      key: PRNG key (drives the choice of example rows only; the LLM samples on its own).
      backend: the server.
      frame: real rows; they define the examples and the allowed values (`column_specs`).
      roles: causal roles; the result has the columns `roles.order`.
      n: rows wanted, >= 1.
      feedback: refinement text appended to every prompt (`feedback_text`), or None.
      examples_per_cell: real example rows per (X, Y) cell, >= 1.
      max_requests: most requests; default 3 * ceil(n / rows_per_request) + 2.
      progress: show a progress bar of the valid rows.

    Returns:
      (rows, report): DataFrame [n, len(roles.order)] in causal order with `frame`'s dtypes
      and a fresh index, and the ParseReport summed over all requests (its `kept` may exceed
      n: the surplus of the last request is cut off).

    References:
      arXiv 2506.19082 (FairCauseSyn), Sec. 3: LLM generation from balanced examples.
    """
    key = check_key(key)
    if not isinstance(backend, LLMBackend):
        raise FairjaxError(f"backend must be an LLMBackend, got {type(backend).__name__}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FairjaxError(f"n must be an integer >= 1, got {n!r}.")
    if max_requests is None:
        max_requests = 3 * math.ceil(n / backend.rows_per_request) + 2
    if isinstance(max_requests, bool) or not isinstance(max_requests, (int, np.integer)):
        raise FairjaxError(f"max_requests must be an integer >= 1 or None, got {max_requests!r}.")
    if max_requests < 1:
        raise FairjaxError(f"max_requests must be an integer >= 1 or None, got {max_requests!r}.")
    columns = list(roles.order)
    specs = column_specs(frame, columns)
    batches, report, have = [], ParseReport(0, 0, {}), 0
    with tqdm(total=n, desc="llm rows", disable=not progress, leave=False) as bar:
        for i in range(max_requests):
            examples = balanced_rows(
                jax.random.fold_in(key, i), frame, roles, per_cell=examples_per_cell
            )
            want = min(backend.rows_per_request, n - have)
            messages = build_messages(roles, specs, examples, want, feedback=feedback)
            rows, batch_report = parse_rows(chat(backend, messages), specs, columns)
            batches.append(rows)
            report = _merge(report, batch_report)
            bar.update(min(len(rows), n - have))
            have += len(rows)
            if have >= n:
                break
    if have < n:
        raise FairjaxError(
            f"the LLM gave {have} valid rows of the {n} wanted in {max_requests} requests; "
            f"it sent {report.dropped} unusable lines ({report.reasons}). Raise max_requests, "
            "lower temperature or try a stronger model."
        )
    return pd.concat(batches, ignore_index=True).iloc[:n].reset_index(drop=True), report
