"""Building blocks of the evaluation reports: one function per section of a report.

The report notebooks (``notebooks/did_evaluation.ipynb`` and
``notebooks/matched_evaluation.ipynb``) stay thin: a cell calls one function here
and displays what it returns. Each section function returns something a notebook
displays as it is: :class:`Html` (a string that renders as HTML), a DataFrame or
a matplotlib Figure. Every piece of text that comes from parameters or data
(titles, column names, labels) is HTML-escaped.

The flow of a report::

    settings = did_settings(**parameters)          # check every parameter, all problems at once
    panel = load_did(settings)                     # read and validate the file
    fit = fit_did(panel, settings)                 # the main estimate and the event study
    headline_box(fit), data_summary_did(fit), trends_figure(fit), event_study_figure(fit),
    estimate_table(fit), robustness_did(fit) -> robustness_table / robustness_figure,
    mde_section(fit), appendix(fit)

and the same with ``matched_settings``, ``load_matched``, ``fit_matched``,
``data_summary_matched``, ``overlap_figure``, ``balance_table``, ``love_plot`` and
``robustness_matched`` for a matched comparison.

Evaluator's own warnings raised while loading or estimating are collected as notes
and shown in the section they concern, not printed as warnings.

Examples
--------
>>> settings = did_settings(data_path="bundled:sick_leave_sib", unit="employee", time="month",
...                         outcome="sick_days", cohort="first_treated", cluster="municipality")
>>> settings.estimator, settings.control_group
('callaway_santanna', 'never')
>>> print(effect_sentence(-0.45, (-0.72, -0.15), outcome_label="sick-leave days"))  # doctest: +NORMALIZE_WHITESPACE
The programme is estimated to have lowered the outcome by 0.45 sick-leave days (95% confidence interval: a fall of
between 0.15 and 0.72).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator.errors import ContractError, EvaluatorError, EvaluatorWarning
from evaluator.power import minimum_detectable_effect
from evaluator.report import ParameterError, resolve_data
from evaluator.results import Result

__all__ = [
    "ContractValue",
    "DidFit",
    "DidSettings",
    "Html",
    "MatchedFit",
    "MatchedSettings",
    "appendix",
    "balance_table",
    "check_line",
    "contract_section",
    "contract_value",
    "contract_verdict",
    "data_summary_did",
    "data_summary_matched",
    "did_settings",
    "effect_sentence",
    "estimate_table",
    "event_study_figure",
    "figure_html",
    "fit_did",
    "fit_matched",
    "headline_box",
    "load_did",
    "load_matched",
    "love_plot",
    "matched_settings",
    "mde_section",
    "mde_sentence",
    "notes_html",
    "observed_pre_post",
    "overlap_figure",
    "results_extra",
    "robustness_did",
    "robustness_figure",
    "robustness_matched",
    "robustness_table",
    "settlement_record",
    "table_html",
    "title_block",
    "trends_figure",
]

esc = html.escape

#: Maryland Scientific Methods Scale level of each design, and what it means in one sentence.
SMS = {
    "difference-in-differences": (
        3,
        "the change in outcomes of those who took part is compared with the change, over the same periods, "
        "of a comparison group that did not take part; this removes differences between the groups that stay "
        "constant over time and shocks that hit both, but not differences that would have changed over time "
        "anyway (level 5 would be a randomised trial).",
    ),
    "matched comparison": (
        3,
        "those who took part are compared with similar people who did not, matched on recorded characteristics; "
        "this removes differences in those characteristics, but not in characteristics that were not recorded "
        "(level 5 would be a randomised trial).",
    ),
}
ROBUSTNESS_COLUMNS = ("specification", "estimate", "ci_low", "ci_high", "p_value", "note", "kind")


# -- display helpers ---------------------------------------------------------------------------------------------------
class Html(str):
    """A string of HTML that Jupyter displays rendered (``display(Html("<b>x</b>"))``)."""

    def _repr_html_(self) -> str:
        return str(self)


def figure_html(fig: Any, caption: str, *, css_class: str = "", alt: str = "") -> Html:
    """A figure as an HTML ``<figure>`` with the PNG embedded and an escaped caption; closes ``fig``.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(2, 2)); _ = fig.add_subplot().plot([0, 1])
    >>> out = figure_html(fig, "A <line>", css_class="demo")
    >>> out.startswith("<figure class='demo'>"), "A &lt;line&gt;" in out
    (True, True)
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)  # a no-op for figures pyplot does not manage; stops inline backends from showing it twice
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cls = f" class='{esc(css_class)}'" if css_class else ""
    return Html(
        f"<figure{cls}><img src='data:image/png;base64,{data}' alt='{esc(alt or caption)}'/>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def table_html(frame: pd.DataFrame, *, css_class: str = "evaluator-table", index: bool = False) -> Html:
    """A DataFrame as an escaped HTML table; numbers with 4 significant digits, p-values below 0.001 as "< 0.001"."""

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return _num(float(v), 4)
        return str(v)

    def fmt_p(v: Any) -> str:
        if isinstance(v, (float, np.floating)) and math.isfinite(v) and v < 0.001:
            return "< 0.001"
        return fmt(v)

    shown = frame.copy()
    for c in shown.columns:
        shown[c] = shown[c].map(fmt_p if str(c).replace("_", "-").lower() in ("p-value", "p") else fmt)
    return Html(shown.to_html(index=index, escape=True, border=0, classes=css_class, na_rep="."))


def notes_html(notes: Sequence[str], *, title: str = "Notes") -> Html:
    """A short list of notes (caveats, warnings raised by the estimators); empty when there are none."""
    if not notes:
        return Html("")
    items = "".join(f"<li>{esc(n)}</li>" for n in dict.fromkeys(notes))
    return Html(f"<div class='evaluator-notes'><p><b>{esc(title)}</b></p><ul>{items}</ul></div>")


def _num(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, without scientific notation for ordinary sizes."""
    if x is None or not math.isfinite(x):
        return "."
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= 6 or mag <= -6:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - mag, 0)
    out = f"{round(x, decimals):,.{decimals}f}"
    if decimals > 0:
        out = out.rstrip("0").rstrip(".")
    return "0" if out.strip("-0.,") == "" else out


def _count(n: Any, min_cell: int) -> str:
    """A count of people for display: ``"<5"`` when it is positive but below ``min_cell`` (disclosure control)."""
    n = int(n)
    return f"<{min_cell}" if 0 < n < min_cell else f"{n:,}"


_SMALL_COUNT = re.compile(
    r"\b(\d+)(?=\s+(?:of|out of|treated|units?|people|persons|participants|employees|prisoners|controls?|"
    r"comparisons?|observations|rows)\b)",
    re.I,
)


def _mask_small(text: str, min_cell: int) -> str:
    """``text`` with counts of people below ``min_cell`` ("3 units", "3 of 500") written as ``"<5"``."""
    if min_cell <= 1:
        return text
    return _SMALL_COUNT.sub(lambda m: f"<{min_cell}" if 0 < int(m.group(1)) < min_cell else m.group(1), text)


def _sdc_notes(notes: Sequence[str], min_cell: int) -> list[str]:
    return [_mask_small(n, min_cell) for n in notes]


def _sdc_note(min_cell: int) -> str:
    return f"Statistical disclosure control: no count below {min_cell}, nor a statistic computed from fewer people."


def _p(p: float) -> str:
    """A p-value for readers: 3 significant digits, "< 0.001" below that."""
    return "< 0.001" if math.isfinite(p) and p < 0.001 else f"= {_num(p)}"


def check_line(result: Result) -> str:
    """Deterministic one-line headline (4 significant digits) that nbval compares.

    Examples
    --------
    >>> from evaluator.results import tidy_table
    >>> check_line(Result("x", tidy_table(["att"], [-0.448751], [0.1]), nobs=10))
    'Headline numbers: estimate -0.4488, standard error 0.1, 95% confidence interval [-0.6447, -0.2528]'
    """
    lo, hi = result.ci

    def g(v: float) -> str:
        s = f"{v:.4g}"
        return "0" if s in ("-0", "0") else s

    level = round(100 * (1 - result.alpha))
    return (
        f"Headline numbers: estimate {g(result.estimate)}, standard error {g(result.se)}, "
        f"{level}% confidence interval [{g(lo)}, {g(hi)}]"
    )


@contextmanager
def _collect(notes: list[str]) -> Iterator[None]:
    """Record warnings raised inside as notes (evaluator's own verbatim); FutureWarnings are dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, (FutureWarning, DeprecationWarning, PendingDeprecationWarning)):
            continue
        text = str(w.message)
        if not issubclass(w.category, EvaluatorWarning):
            text = f"{w.category.__name__}: {text}"
        if text not in notes:
            notes.append(text)


# -- parameters --------------------------------------------------------------------------------------------------------
def _text(problems: list[str], name: str, value: Any, *, empty: bool = False) -> None:
    if not isinstance(value, str) or (not empty and not value.strip()):
        problems.append(f"{name}={value!r}: expected {'text' if empty else 'a non-empty column name'}")


def _one_of(problems: list[str], name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        problems.append(f"{name}={value!r}: choose one of {list(allowed)}")


def _columns_list(problems: list[str], name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{name}={value!r}: expected a list of column names")
        return []
    return list(value)


def _common(problems: list[str], p: Mapping[str, Any]) -> None:
    a = p["alpha"]
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < 0.5:
        problems.append(f"alpha={a!r}: expected a number between 0 and 0.5 (0.05 gives 95% intervals)")
    for name in ("seed", "min_cell"):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            problems.append(f"{name}={v!r}: expected a whole number >= 0")
    _text(problems, "title", p["title"], empty=True)
    _text(problems, "outcome_label", p["outcome_label"], empty=True)
    _text(problems, "data_path", p["data_path"])


def _finish(problems: list[str], contract_path: Any, outcome: str) -> Any:
    """Raise the parameter problems; then read the contract (``None`` without one), checked against ``outcome``.

    A contract file that does not validate raises its :class:`ContractError` (naming
    the field); a contract on another metric than ``outcome`` is refused here, before
    any data is read.
    """
    if contract_path is not None and not isinstance(contract_path, str):
        problems.append(f"contract_path={contract_path!r}: expected the path of a contract file, or '' for none")
    if problems:
        raise ParameterError("the report's parameters have problems:\n" + "\n".join(f"  - {x}" for x in problems))
    if not contract_path:
        return None
    from evaluator.contracts import Contract

    contract = Contract.from_file(resolve_data(contract_path, parameter="contract_path"))
    if contract.metric != outcome:
        raise ContractError(
            f"contract_path={contract_path!r}: the contract pays on '{contract.metric}' (field outcome.metric) but "
            f"the report's outcome is '{outcome}'; set outcome = \"{contract.metric}\" or use a contract on '{outcome}'"
        )
    return contract


def _as_dict(settings: Any, lists: Sequence[str]) -> dict[str, Any]:
    d = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name not in ("design", "contract")}
    for name in lists:
        d[name] = list(d[name])
    return d


@dataclass(frozen=True)
class DidSettings:
    """The checked parameters of a difference-in-differences report (see :func:`did_settings`)."""

    data_path: str
    unit: str
    time: str
    outcome: str
    cohort: str
    cluster: str | None = None
    covariates: tuple[str, ...] = ()
    title: str = "Difference-in-differences evaluation"
    outcome_label: str = ""
    estimator: str = "callaway_santanna"
    control_group: str = "never"
    method: str = "dr"
    inference: str = "bootstrap"
    n_boot: int = 999
    alpha: float = 0.05
    seed: int = 1
    contract_path: str = ""
    min_cell: int = 5
    contract: Any = field(default=None, compare=False, repr=False)
    design: str = field(default="difference-in-differences", init=False)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for the appendix and results.json)."""
        return _as_dict(self, ["covariates"])


def did_settings(
    *,
    data_path: str,
    unit: str,
    time: str,
    outcome: str,
    cohort: str,
    cluster: str | None = None,
    covariates: Sequence[str] | None = None,
    title: str = "Difference-in-differences evaluation",
    outcome_label: str = "",
    estimator: str = "callaway_santanna",
    control_group: str = "never",
    method: str = "dr",
    inference: str | None = None,
    n_boot: int = 999,
    alpha: float = 0.05,
    seed: int = 1,
    contract_path: str = "",
    min_cell: int = 5,
) -> DidSettings:
    """Check a difference-in-differences report's parameters; every problem is listed in one error.

    Parameters
    ----------
    estimator : {"callaway_santanna", "twfe"}
        Callaway and Sant'Anna (2021) group-time effects, or two-way fixed effects.
    control_group : {"never", "notyet"}
        Comparison units for Callaway-Sant'Anna: never treated, or not yet treated.
        Two-way fixed effects always compares with every unit not (yet) treated and
        accepts only ``"notyet"`` or the default ``"never"`` (recorded with a note).
    method : {"dr", "ipw", "reg"}
        Callaway-Sant'Anna with covariates: doubly robust, weighting or regression.
    inference : str, optional
        Callaway-Sant'Anna: ``"bootstrap"`` (multiplier bootstrap, ``n_boot`` draws,
        clustered) or ``"analytic"``. Two-way fixed effects: ``"cluster"`` (CR1) or
        ``"wild"`` (wild cluster bootstrap). Default: the first of each pair.
    Other parameters are those of the notebook's parameters cell.

    Raises
    ------
    ParameterError
        Listing every parameter with a problem, its value and what is allowed.
    ContractError
        When the file ``contract_path`` names is not a valid contract (the message
        names the field), or pays on another metric than ``outcome``.

    Examples
    --------
    >>> did_settings(data_path="x.csv", unit="id", time="t", outcome="y", cohort="g",
    ...              estimator="twfe", inference="bootstrap")
    Traceback (most recent call last):
    ...
    evaluator.report.ParameterError: the report's parameters have problems:
      - inference='bootstrap': with estimator='twfe' choose one of ['cluster', 'wild']
    """
    problems: list[str] = []
    p = dict(locals())
    p.pop("problems")
    _common(problems, p)
    for name in ("unit", "time", "outcome", "cohort"):
        _text(problems, name, p[name])
    if cluster is not None and not isinstance(cluster, str):
        problems.append(f"cluster={cluster!r}: expected a column name, or '' for clustering on units")
    covs = _columns_list(problems, "covariates", covariates)
    _one_of(problems, "estimator", estimator, ("callaway_santanna", "twfe"))
    _one_of(problems, "control_group", control_group, ("never", "notyet"))
    _one_of(problems, "method", method, ("dr", "ipw", "reg"))
    schemes = {"callaway_santanna": ("bootstrap", "analytic"), "twfe": ("cluster", "wild")}
    if estimator in schemes:
        if inference is None:
            inference = schemes[estimator][0]
        elif inference not in schemes[estimator]:
            problems.append(
                f"inference={inference!r}: with estimator={estimator!r} choose one of {list(schemes[estimator])}"
            )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        problems.append(f"n_boot={n_boot!r}: expected a whole number of bootstrap draws >= 0")
    elif n_boot < 99 and inference in ("bootstrap", "wild"):
        problems.append(f"n_boot={n_boot!r}: a bootstrap needs at least 99 draws (999 is usual)")
    contract = _finish(problems, contract_path, outcome)
    return DidSettings(
        data_path=data_path,
        unit=unit,
        time=time,
        outcome=outcome,
        cohort=cohort,
        cluster=cluster or None,
        covariates=tuple(covs),
        title=title,
        outcome_label=outcome_label,
        estimator=estimator,
        control_group=control_group,
        method=method,
        inference=str(inference),
        n_boot=n_boot,
        alpha=float(alpha),
        seed=seed,
        contract_path=contract_path or "",
        min_cell=min_cell,
        contract=contract,
    )


@dataclass(frozen=True)
class MatchedSettings:
    """The checked parameters of a matched-comparison report (see :func:`matched_settings`)."""

    data_path: str
    unit: str
    treat: str
    outcome: str
    covariates: tuple[str, ...]
    exact: tuple[str, ...] = ()
    title: str = "Matched comparison evaluation"
    outcome_label: str = ""
    distance: str = "logit"
    ratio: int = 1
    replace: bool = False
    caliper: float | None = None
    inference: str = "pairs"
    adjust: bool = False
    n_boot: int = 199
    alpha: float = 0.05
    seed: int = 1
    contract_path: str = ""
    min_cell: int = 5
    cohort: str = ""
    contract: Any = field(default=None, compare=False, repr=False)
    design: str = field(default="matched comparison", init=False)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for the appendix and results.json)."""
        return _as_dict(self, ["covariates", "exact"])


def matched_settings(
    *,
    data_path: str,
    unit: str,
    treat: str,
    outcome: str,
    covariates: Sequence[str],
    exact: Sequence[str] | None = None,
    title: str = "Matched comparison evaluation",
    outcome_label: str = "",
    distance: str = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    inference: str = "pairs",
    adjust: bool = False,
    n_boot: int = 199,
    alpha: float = 0.05,
    seed: int = 1,
    contract_path: str = "",
    min_cell: int = 5,
    cohort: str = "",
) -> MatchedSettings:
    """Check a matched-comparison report's parameters; every problem is listed in one error.

    Parameters
    ----------
    distance : {"logit", "ps", "mahalanobis"}
        Match on the logit of the propensity score, the score, or Mahalanobis distance.
    caliper : float, optional
        Largest allowed distance in standard deviations of the (logit) propensity
        score; not available with ``distance="mahalanobis"``.
    inference : {"pairs", "abadie_imbens", "bootstrap"}
        See :meth:`evaluator.MatchResult.effect`.
    adjust : bool
        Regression-adjust the effect for the covariates in the matched sample.
    cohort : str
        Column of (release) cohorts: the match is also run within each cohort, for a
        contract that pays per cohort (``""``: none).
    Other parameters are those of the notebook's parameters cell.

    Raises
    ------
    ParameterError, ContractError
        As :func:`did_settings`.

    Examples
    --------
    >>> matched_settings(data_path="x.csv", unit="id", treat="d", outcome="y", covariates=["age"],
    ...                  distance="mahalanobis", caliper=0.2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    evaluator.report.ParameterError: the report's parameters have problems:
      - caliper=0.2: a caliper is in standard deviations of the propensity score and cannot be used with ...
    """
    problems: list[str] = []
    p = dict(locals())
    p.pop("problems")
    _common(problems, p)
    for name in ("unit", "treat", "outcome"):
        _text(problems, name, p[name])
    covs = _columns_list(problems, "covariates", covariates)
    if not covs and "covariates" not in " ".join(problems):
        problems.append("covariates=[]: name at least one covariate to match on")
    exact_cols = _columns_list(problems, "exact", exact)
    _one_of(problems, "distance", distance, ("logit", "ps", "mahalanobis"))
    _one_of(problems, "inference", inference, ("pairs", "abadie_imbens", "bootstrap"))
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        problems.append(f"ratio={ratio!r}: expected a whole number of controls per treated unit >= 1")
    for name, value in (("replace", replace), ("adjust", adjust)):
        if not isinstance(value, bool):
            problems.append(f"{name}={value!r}: expected True or False")
    if caliper is not None:
        if isinstance(caliper, bool) or not isinstance(caliper, (int, float)) or caliper <= 0:
            problems.append(f"caliper={caliper!r}: expected a positive number or None")
        elif distance == "mahalanobis":
            problems.append(
                f"caliper={caliper!r}: a caliper is in standard deviations of the propensity score and cannot be "
                "used with distance='mahalanobis'; set caliper = None"
            )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        problems.append(f"n_boot={n_boot!r}: expected a whole number of bootstrap replications >= 2")
    _text(problems, "cohort", cohort, empty=True)
    contract = _finish(problems, contract_path, outcome)
    return MatchedSettings(
        data_path=data_path,
        unit=unit,
        treat=treat,
        outcome=outcome,
        covariates=tuple(covs),
        exact=tuple(exact_cols),
        title=title,
        outcome_label=outcome_label,
        distance=distance,
        ratio=ratio,
        replace=replace,
        caliper=None if caliper is None else float(caliper),
        inference=inference,
        adjust=adjust,
        n_boot=n_boot,
        alpha=float(alpha),
        seed=seed,
        contract_path=contract_path or "",
        min_cell=min_cell,
        cohort=cohort,
        contract=contract,
    )


# -- loading and fitting -----------------------------------------------------------------------------------------------
def _notes_of(frame: pd.DataFrame) -> list[str]:
    return list(frame.attrs.get("evaluator", {}).get("notes", []))


def load_did(settings: DidSettings) -> pd.DataFrame:
    """Read and validate the panel named by ``settings.data_path`` (:func:`evaluator.load_panel`).

    Warnings (e.g. units dropped for lack of a pre-period) are kept in
    ``frame.attrs["evaluator"]["notes"]`` for the data section.
    """
    from evaluator.data import load_panel

    s = settings
    columns: dict[str, Any] = {"unit": s.unit, "time": s.time, "outcome": s.outcome, "cohort": s.cohort}
    if s.cluster:
        columns["cluster"] = s.cluster
    if s.covariates:
        columns["covariates"] = list(s.covariates)
    notes: list[str] = []
    with _collect(notes):
        frame = load_panel(resolve_data(s.data_path), columns=columns)
    frame.attrs["evaluator"]["notes"] = notes
    return frame


def load_matched(settings: MatchedSettings) -> pd.DataFrame:
    """Read and validate one-row-per-person data (:func:`evaluator.load_individuals`)."""
    from evaluator.data import load_individuals

    s = settings
    covs = list(dict.fromkeys([*s.covariates, *s.exact]))
    columns = {"unit": s.unit, "treat": s.treat, "outcome": s.outcome, "covariates": covs}
    notes: list[str] = []
    with _collect(notes):
        frame = load_individuals(resolve_data(s.data_path), columns=columns)
    if s.cohort and s.cohort not in frame.columns:
        raise ParameterError(
            f"cohort={s.cohort!r}: no such column in {s.data_path}; the columns are {list(frame.columns)}"
        )
    if s.cohort and frame[s.cohort].isna().any():
        raise ParameterError(f"cohort={s.cohort!r}: the column has missing values; every person needs a cohort")
    frame.attrs["evaluator"]["notes"] = notes
    return frame


@dataclass
class DidFit:
    """What the difference-in-differences report shows: the headline result, the event study and notes."""

    settings: DidSettings
    panel: pd.DataFrame
    result: Result
    event: Result
    notes: list[str]
    n_units: int
    n_treated: int
    n_clusters: int
    cohorts: pd.DataFrame
    pretrend: dict[str, Any] = field(default_factory=dict)

    @property
    def design(self) -> str:
        return self.settings.design


def _estimate_did(
    panel: pd.DataFrame,
    s: DidSettings,
    *,
    estimator: str | None = None,
    control: str | None = None,
    inference: str | None = None,
    covariates: Sequence[str] | None = None,
) -> Result:
    """One difference-in-differences estimate under the settings, with the given parts changed."""
    from evaluator.did import did
    from evaluator.staggered import staggered_did

    estimator = estimator or s.estimator
    inference = inference or s.inference
    covs = list(s.covariates if covariates is None else covariates)
    common = {"outcome": s.outcome, "unit": s.unit, "time": s.time, "cohort": s.cohort, "cluster": s.cluster}
    if estimator == "callaway_santanna":
        control = control or s.control_group
        return staggered_did(
            panel,
            **common,
            control="not_yet" if control == "notyet" else "never",
            method=s.method if covs else "dr",
            covariates=covs or None,
            n_boot=s.n_boot if inference == "bootstrap" else 0,
            seed=s.seed,
            alpha=s.alpha,
        )
    return did(
        panel,
        **common,
        covariates=covs or None,
        inference="wild" if inference == "wild" else "cluster",
        n_boot=s.n_boot,
        seed=s.seed,
        alpha=s.alpha,
    )


def _window(panel: pd.DataFrame, s: DidSettings) -> tuple[int, int]:
    """Event-time window of the event study: up to 6 periods before and 12 after the start."""
    g = panel[s.cohort].to_numpy()
    t = panel[s.time].to_numpy()
    treated = g != 0
    e = t[treated] - g[treated]
    return int(min(6, -e.min())) if len(e) else 0, int(min(12, e.max())) if len(e) else 0


def _pretrend(event: Result, *, restrictions: int, n_clusters: int, alpha: float) -> dict[str, Any]:
    """A pre-trend verdict: the joint test where it is reliable, else the simultaneous bands (or Bonferroni)."""
    pre = event.pretest
    t = event.table
    rows = t.loc[(t["event_time"] < 0) & t["std_error"].notna()] if "event_time" in t else t.iloc[0:0]
    out: dict[str, Any] = {"n_pre": len(rows)}
    reliable = (
        pre is not None
        and math.isfinite(float(pre.get("statistic", math.nan)))
        and float(pre["statistic"]) >= 0
        and restrictions < n_clusters - 1
    )
    if reliable:
        p = float(pre["p_value"])
        out.update(method="joint test", p_value=p, passed=p >= alpha)
        verdict = "no sign" if p >= alpha else "evidence"
        out["sentence"] = (
            f"Pre-trend check: joint test that all {restrictions} pre-programme differences are zero, p {_p(p)}: "
            f"{verdict} of diverging trends before the programme started."
        )
        return out
    if rows.empty:
        out.update(method="none", passed=None, sentence="Pre-trend check: no pre-programme periods to check.")
        return out
    if {"band_low", "band_high"} <= set(t.columns) and rows["band_low"].notna().all():
        lo, hi, how = rows["band_low"], rows["band_high"], "simultaneous (uniform) bands"
    else:
        from scipy import stats

        z = float(stats.norm.ppf(1 - alpha / (2 * len(rows))))
        lo, hi = rows["estimate"] - z * rows["std_error"], rows["estimate"] + z * rows["std_error"]
        how = "Bonferroni-adjusted intervals"
    bad = rows.loc[(lo > 0) | (hi < 0), "event_time"].astype(int).tolist()
    why = (
        f"the joint test is not reliable here ({restrictions} pre-programme differences but only {n_clusters} clusters)"
        if pre is not None or restrictions >= n_clusters - 1
        else "no joint test was computed"
    )
    out.update(method=how, passed=not bad, periods_failing=bad)
    level = round(100 * (1 - alpha))
    if bad:
        out["sentence"] = (
            f"Pre-trend check: {why}; the {level}% {how} exclude zero {len(bad)} period(s) before the start "
            f"(periods {bad}): trends may have differed before the programme, read the estimate with caution."
        )
    else:
        out["sentence"] = (
            f"Pre-trend check: {why}; the {level}% {how} of all {len(rows)} pre-programme periods shown include "
            "zero: no sign of diverging trends before the programme started."
        )
    return out


def fit_did(panel: pd.DataFrame, settings: DidSettings) -> DidFit:
    """The main difference-in-differences estimate and its event study, as the settings ask.

    Callaway-Sant'Anna: headline = the simple aggregate; event study = the dynamic
    aggregate over event times -6 to 12. Two-way fixed effects: headline =
    :func:`evaluator.did`; event study = :func:`evaluator.event_study` with 6 leads
    and 12 lags (binned end points).
    """
    from evaluator.did import event_study

    s = settings
    notes = _notes_of(panel)
    leads, lags = _window(panel, s)
    with _collect(notes):
        result = _estimate_did(panel, s)
        if s.estimator == "callaway_santanna":
            event = result.aggregate("dynamic", min_e=-leads, max_e=lags)  # type: ignore[attr-defined]
            att = result.att_gt  # type: ignore[attr-defined]
            restrictions = int(((att["time"] < att["cohort"]) & att["att"].notna()).sum())
        else:
            if s.control_group == "never":
                notes.append(
                    "two-way fixed effects compares with every unit not (yet) treated; control_group='never' "
                    "applies to Callaway-Sant'Anna only"
                )
            event = event_study(
                panel,
                outcome=s.outcome,
                unit=s.unit,
                time=s.time,
                cohort=s.cohort,
                cluster=s.cluster,
                covariates=list(s.covariates) or None,
                leads=max(leads, 1),
                lags=lags,
                inference="wild" if s.inference == "wild" else "cluster",
                n_boot=s.n_boot,
                seed=s.seed,
                alpha=s.alpha,
            )
            restrictions = max(leads - 1, 0)
    for n in result.notes:
        if n not in notes and not n.startswith("estimate, SE, CI"):
            notes.append(n)
    cluster_col = s.cluster or s.unit
    units = panel.drop_duplicates(s.unit)
    cohorts = (
        units.assign(_c=units[s.cohort])
        .groupby("_c")
        .agg(units=(s.unit, "size"), clusters=(cluster_col, "nunique"))
        .reset_index()
        .rename(columns={"_c": "first treated period"})
    )
    n_clusters = int(panel[cluster_col].nunique())
    fit = DidFit(
        settings=s,
        panel=panel,
        result=result,
        event=event,
        notes=notes,
        n_units=int(len(units)),
        n_treated=int((units[s.cohort] != 0).sum()),
        n_clusters=n_clusters,
        cohorts=cohorts,
    )
    fit.pretrend = _pretrend(event, restrictions=restrictions, n_clusters=n_clusters, alpha=s.alpha)
    return fit


@dataclass
class MatchedFit:
    """What the matched-comparison report shows: the match, the effect and notes."""

    settings: MatchedSettings
    data: pd.DataFrame
    match: Any
    result: Result
    notes: list[str]
    n_units: int
    n_treated: int
    n_clusters: None = None
    by_cohort: dict[str, tuple[Any, Result]] = field(default_factory=dict)
    cohort_sizes: dict[str, int] = field(default_factory=dict)
    small_cohorts: list[str] = field(default_factory=list)

    @property
    def design(self) -> str:
        return self.settings.design


def _match(data: pd.DataFrame, s: MatchedSettings, *, distance: str | None = None) -> Any:
    from evaluator.matching import match

    distance = distance or s.distance
    return match(
        data,
        treat=s.treat,
        covariates=list(s.covariates),
        distance=distance,  # type: ignore[arg-type]
        ratio=s.ratio,
        replace=s.replace,
        caliper=None if distance == "mahalanobis" else s.caliper,
        exact=list(s.exact) or None,
        unit=s.unit,
        seed=s.seed,
    )


def _effect(m: Any, s: MatchedSettings, *, inference: str | None = None, adjust: bool | None = None) -> Result:
    adjust = s.adjust if adjust is None else adjust
    return m.effect(
        s.outcome,
        adjust=list(s.covariates) if adjust else None,
        inference=inference or s.inference,
        alpha=s.alpha,
        n_boot=s.n_boot,
        seed=s.seed,
    )


def fit_matched(data: pd.DataFrame, settings: MatchedSettings) -> MatchedFit:
    """Match treated units to comparisons and estimate the effect on the treated, as the settings ask."""
    s = settings
    notes = _notes_of(data)
    with _collect(notes):
        m = _match(data, s)
        result = _effect(m, s)
    for n in result.notes:
        if n not in notes:
            notes.append(n)
    by_cohort: dict[str, tuple[Any, Result]] = {}
    sizes: dict[str, int] = {}
    small: list[str] = []
    if s.cohort:
        for g in sorted(data[s.cohort].unique()):
            sub = data.loc[data[s.cohort] == g]
            key = str(int(g)) if isinstance(g, (int, float, np.number)) and float(g).is_integer() else str(g)
            n_treated = int((sub[s.treat] == 1).sum())
            if s.min_cell > 1 and n_treated < s.min_cell:
                small.append(key)
                continue
            try:
                with _collect(notes):
                    mg = _match(sub, s)
                    by_cohort[key] = (mg, _effect(mg, s))
            except (EvaluatorError, ValueError, np.linalg.LinAlgError) as exc:
                notes.append(f"cohort {key} could not be matched on its own: {str(exc).splitlines()[0]}")
                continue
            sizes[key] = int(mg.summary()["treated_matched"])
        if small:
            notes.append(
                f"{len(small)} cohort(s) have fewer than {s.min_cell} participants: not estimated on their own "
                "(statistical disclosure control); they count in the overall estimate"
            )
    c = m.summary()
    return MatchedFit(
        settings=s,
        data=data,
        match=m,
        result=result,
        notes=notes,
        n_units=int(c["treated_matched"]) + int(c["controls_used"]),
        n_treated=int(c["treated_matched"]),
        by_cohort=by_cohort,
        cohort_sizes=sizes,
        small_cohorts=small,
    )


# -- title and section 1: the headline ---------------------------------------------------------------------------------
def title_block(fit: DidFit | MatchedFit) -> Html:
    """The report's title and a one-line description of what was evaluated."""
    s = fit.settings
    label = f" ({s.outcome_label})" if s.outcome_label else ""
    return Html(
        f"<h1>{esc(s.title)}</h1><p>Design: {esc(fit.design)}. Outcome: <code>{esc(s.outcome)}</code>{esc(label)}.</p>"
    )


def effect_sentence(estimate: float, ci: tuple[float, float], *, outcome_label: str = "", level: int = 95) -> str:
    """The effect and its confidence interval in words, in the outcome's own units (plain text).

    Examples
    --------
    >>> effect_sentence(0.12, (-0.03, 0.27), outcome_label="points")  # doctest: +ELLIPSIS
    'The programme is estimated to have raised the outcome by 0.12 points (95% confidence interval: from ... effect).'
    """
    units = f" {outcome_label}" if outcome_label else ""
    lo, hi = ci
    verb = "raised" if estimate > 0 else "lowered" if estimate < 0 else "not changed"
    head = f"The programme is estimated to have {verb} the outcome"
    head += f" by {_num(abs(estimate))}{units}" if estimate != 0 else ""
    if lo > 0:
        interval = f"a rise of between {_num(lo)} and {_num(hi)}"
    elif hi < 0:
        interval = f"a fall of between {_num(abs(hi))} and {_num(abs(lo))}"
    else:
        interval = (
            f"from a fall of {_num(abs(lo))} to a rise of {_num(hi)}, so the data are also consistent with no effect"
        )
    return f"{head} ({level}% confidence interval: {interval})."


def headline_box(fit: DidFit | MatchedFit, value: ContractValue | None = None) -> Html:
    """One screen for a non-specialist: the effect in words, the contract verdict and the evidence level.

    ``value`` (from :func:`contract_value`) gives the verdict: whether the target was
    met and the payment due, with its range across the confidence interval.
    """
    s, r = fit.settings, fit.result
    level = round(100 * (1 - r.alpha))
    sms, meaning = SMS[fit.design]
    signif = (
        f"The effect is statistically significant at the {100 - level}% level (p {_p(r.pvalue)})."
        if r.pvalue < r.alpha
        else f"The effect is not statistically significant at the {100 - level}% level (p {_p(r.pvalue)})."
    )
    contract = contract_verdict(value)
    units = f"{fit.n_units:,} units, {fit.n_treated:,} of them in the programme"
    return Html(
        "<div class='headline-box'>"
        "<h3>Headline</h3>"
        f"<p>{esc(effect_sentence(r.estimate, r.ci, outcome_label=s.outcome_label, level=level))} {esc(signif)}</p>"
        f"<p><b>Contract target met?</b> {esc(contract)}</p>"
        f"<p><b>Strength of evidence:</b> level {sms} of 5 on the Maryland Scientific Methods Scale: {esc(meaning)}</p>"
        f"<p><small>Design: {esc(fit.design)}; {esc(units)}.</small></p>"
        "</div>"
    )


# -- section 2: data ---------------------------------------------------------------------------------------------------
def _facts(rows: Sequence[tuple[str, Any]]) -> Html:
    body = "".join(f"<tr><th style='text-align:left'>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
    return Html(f"<table class='evaluator-table'>{body}</table>")


def _dropped(frame: pd.DataFrame, min_cell: int = 0) -> list[str]:
    dropped = frame.attrs.get("evaluator", {}).get("dropped", {}) or {}
    reasons = {"no_pre_period": "never observed before their first treated period, so their change cannot be measured"}
    out = []
    for key, v in dropped.items():
        units, rows = v.get("units", "?"), v.get("rows", "?")
        if isinstance(units, (int, np.integer)):
            small = 0 < units < min_cell
            units = _count(units, min_cell)
            rows = "rows not shown" if small else f"{rows} rows"
        else:
            rows = f"{rows} rows"
        out.append(f"{units} units ({rows}) dropped: {reasons.get(key, key)}")
    return out


def _small_cohorts(fit: DidFit) -> list[Any]:
    """Treated cohorts with fewer than ``min_cell`` units (empty when disclosure control is off)."""
    from evaluator.disclosure import small_groups

    sizes = fit.cohorts.set_index("first treated period")["units"]
    return [g for g in small_groups(sizes[sizes.index != 0], fit.settings.min_cell)]


def data_summary_did(fit: DidFit) -> Html:
    """Units, periods, cohorts with unit counts, clusters, anything dropped and why."""
    s, p = fit.settings, fit.panel
    times = p[s.time]
    mc = s.min_cell
    dropped = _dropped(p, mc) or ["nothing was dropped"]
    facts = [
        ("Data", s.data_path),
        ("Observations (unit-periods)", f"{len(p):,}"),
        ("Units", _count(fit.n_units, mc)),
        ("In the programme (ever treated)", _count(fit.n_treated, mc)),
        ("Never treated", _count(fit.n_units - fit.n_treated, mc)),
        ("Periods", f"{times.nunique()} (from {times.min()} to {times.max()})"),
        ("Clusters", f"{fit.n_clusters:,} ({s.cluster or s.unit})"),
        ("Covariates", ", ".join(s.covariates) or "none"),
        ("Dropped", "; ".join(dropped)),
        ("Small-cell threshold", mc if mc > 1 else "none (disclosure control is off)"),
    ]
    from evaluator.disclosure import suppress_counts

    cohorts = fit.cohorts.copy()
    cohorts["first treated period"] = cohorts["first treated period"].map(lambda g: "never" if g == 0 else g)
    shown = suppress_counts(cohorts, counts=["units"], statistics=["clusters"], min_cell=mc)
    foot = f"<p><small>{esc(shown.footnote)}</small></p>" if shown.footnote else ""
    data_notes = _sdc_notes([n for n in fit.notes if "dropped" in n.lower()], mc)
    return Html(
        _facts(facts)
        + "<p>Units by the period they entered the programme (their cohort):</p>"
        + table_html(shown.frame)
        + foot
        + notes_html(data_notes, title="Data notes")
    )


def data_summary_matched(fit: MatchedFit) -> Html:
    """Treated units, the comparison pool, who was matched and who was dropped (caliper, support) and why."""
    s = fit.settings
    c = fit.match.summary()
    mc = s.min_cell

    def n(key: str) -> str:
        return _count(c[key], mc)

    facts = [
        ("Data", s.data_path),
        ("People in the file", _count(len(fit.data), mc)),
        ("In the programme (treated)", n("treated")),
        ("Comparison pool", n("controls")),
        ("Treated matched", n("treated_matched")),
        ("Treated dropped: no comparison within the caliper", n("treated_dropped_caliper")),
        ("Treated dropped: outside common support", n("treated_dropped_support")),
        ("Treated unmatched for other reasons (pool ran out)", n("treated_unmatched_other")),
        ("Comparison people used", n("controls_used")),
        ("Most matches of one comparison person", f"{int(c['control_reuse_max']):,}"),
        ("Matched on", ", ".join(s.covariates)),
        ("Exactly matched on", ", ".join(s.exact) or "nothing"),
        ("Distance", {"logit": "logit of the propensity score", "ps": "propensity score"}.get(s.distance, s.distance)),
        ("Caliper", "none" if s.caliper is None else f"{s.caliper} SD of the distance"),
        ("Comparisons per treated", s.ratio),
        ("Comparisons reused (with replacement)", "yes" if s.replace else "no"),
        ("Small-cell threshold", mc if mc > 1 else "none (disclosure control is off)"),
    ]
    table = ""
    if s.cohort:
        from evaluator.disclosure import suppress_counts

        d = fit.data
        per = (
            d.groupby(s.cohort)[s.treat]
            .agg(treated="sum", controls=lambda x: int((x == 0).sum()))
            .reset_index()
            .rename(columns={s.cohort: "cohort"})
        )
        per["treated"] = per["treated"].astype(int)
        per["matched"] = [fit.cohort_sizes.get(str(g), 0) for g in per["cohort"]]
        shown = suppress_counts(per, counts=["treated", "controls", "matched"], min_cell=mc)
        foot = f"<p><small>{esc(shown.footnote)}</small></p>" if shown.footnote else ""
        table = "<p>People by cohort (the match is also run within each cohort):</p>" + table_html(shown.frame) + foot
    return Html(_facts(facts) + table + notes_html(_sdc_notes(fit.notes, mc), title="Notes"))


# -- figures -----------------------------------------------------------------------------------------------------------
def trends_figure(fit: DidFit) -> Html:
    """Raw mean outcome by cohort over time."""
    from evaluator import plots

    s = fit.settings
    small = _small_cohorts(fit)
    panel = fit.panel.loc[~fit.panel[s.cohort].isin(small)] if small else fit.panel
    fig = plots.trends(panel, outcome=s.outcome, time=s.time, cohort=s.cohort, unit=s.unit)
    fig.set_size_inches(8, 4.2)
    label = f" ({s.outcome_label})" if s.outcome_label else ""
    extra = ""
    if small:
        merged = fit.panel.loc[fit.panel[s.cohort].isin(small)]
        n = int(merged[s.unit].nunique())
        if n >= s.min_cell:
            ax = fig.axes[0]
            means = merged.groupby(s.time)[s.outcome].mean()
            ax.plot(means.index, means.to_numpy(), color="black", ls=":", lw=1.2, label=f"other small cohorts (n={n})")
            ax.legend(fontsize=8)
            extra = (
                f" Cohorts with fewer than {s.min_cell} units are drawn together as one line (other small cohorts) "
                "for statistical disclosure control."
            )
        else:
            extra = (
                f" {len(small)} cohort(s) with fewer than {s.min_cell} units are not drawn (statistical disclosure "
                "control), not even merged, as together they are still too few."
            )
    return figure_html(
        fig,
        f"Raw trends: mean {s.outcome}{label} by cohort, before any adjustment. Lines that run in parallel "
        "before the dotted start lines support the comparison." + extra,
        css_class="raw-trends",
    )


def event_study_figure(fit: DidFit) -> Html:
    """The event-study figure with the pre-trend check in its caption (class ``event-study``)."""
    from matplotlib.figure import Figure

    from evaluator import plots

    s, ev = fit.settings, fit.event
    shown = replace(ev, info={k: v for k, v in ev.info.items() if k != "pretest"})
    fig = Figure(figsize=(9, 4.4), layout="constrained")
    title = "Effect by periods since the programme started"
    plots.coefficients(shown, ax=fig.add_subplot(), title=title)
    estimator = "Callaway-Sant'Anna" if s.estimator == "callaway_santanna" else "two-way fixed effects"
    caption = (
        f"Event study ({estimator}): the difference between programme and comparison units in each period "
        "relative to the programme start; left of the dashed line is before the start, where it should be "
        f"close to zero. {fit.pretrend.get('sentence', '')}"
    )
    return figure_html(fig, caption, css_class="event-study")


def overlap_figure(fit: MatchedFit) -> Html:
    """Propensity-score distributions of treated and comparison people, before and after matching."""
    from evaluator.matching import match

    m = fit.match
    if "pscore" not in m.data.columns:  # Mahalanobis matching: fit a score only to show overlap
        s = fit.settings
        with _collect([]):
            m = match(fit.data, treat=s.treat, covariates=list(s.covariates), unit=s.unit, distance="ps")
        m = replace(m, data=m.data.assign(match_weight=fit.match.data["match_weight"].to_numpy()))
    fig = m.plot_overlap()
    return figure_html(
        fig,
        "Overlap: how likely each person was to join the programme given their characteristics (propensity "
        "score), for programme and comparison people, before and after matching. After matching the two "
        "distributions should look alike.",
        css_class="overlap",
    )


def love_plot(fit: MatchedFit) -> Html:
    """Love plot: absolute standardised mean differences before and after matching."""
    small = _small_levels(fit, fit.match.balance())
    fig = fit.match.plot_balance(exclude=small)
    left_out = (
        f" {len(small)} level(s) held by fewer than {fit.settings.min_cell} people are left out "
        "(statistical disclosure control)."
        if small
        else ""
    )
    return figure_html(
        fig,
        "Balance: the standardised difference between programme and comparison people in each characteristic, "
        "before (hollow) and after (filled) matching; below the red line (0.1) counts as well balanced." + left_out,
        css_class="love-plot",
    )


def balance_table(fit: MatchedFit) -> Html:
    """Balance before and after matching: means, standardised differences, variance ratios (``balance-table``)."""
    b = fit.match.balance()
    wide = b.pivot(index="term", columns="sample", values=["mean_treated", "mean_control", "smd", "var_ratio"])
    order = list(dict.fromkeys(b["term"]))
    out = pd.DataFrame(
        {
            "characteristic": order,
            "mean, programme": wide[("mean_treated", "after")].loc[order].to_numpy(),
            "mean, comparison before": wide[("mean_control", "before")].loc[order].to_numpy(),
            "mean, comparison after": wide[("mean_control", "after")].loc[order].to_numpy(),
            "SMD before": wide[("smd", "before")].loc[order].to_numpy(),
            "SMD after": wide[("smd", "after")].loc[order].to_numpy(),
            "variance ratio after": wide[("var_ratio", "after")].loc[order].to_numpy(),
        }
    )
    out["characteristic"] = out["characteristic"].replace({"distance": "matching score"})
    out.iloc[:, 1:] = out.iloc[:, 1:].astype(float).round(3)
    small = _small_levels(fit, b)
    foot = ""
    worst = float(np.nanmax(np.abs(out["SMD after"].to_numpy(dtype=float))))
    if small:
        hide = out["characteristic"].isin(small)
        out = out.astype({c: object for c in out.columns[1:]})
        out.loc[hide, out.columns[1:]] = "."
        foot = (
            f"<p><small>{len(small)} level(s) of categorical characteristics are held by fewer than "
            f"{fit.settings.min_cell} people in a group: their rows are suppressed (statistical disclosure "
            "control).</small></p>"
        )
    verdict = (
        "After matching every standardised mean difference (SMD) is below 0.1 in absolute value "
        f"(largest {_num(worst)})."
        if worst < 0.1
        else f"After matching the largest absolute standardised mean difference is {_num(worst)}, above the usual 0.1."
    )
    return Html(table_html(out, css_class="balance-table") + foot + f"<p>{esc(verdict)}</p>")


def _small_levels(fit: MatchedFit, balance: pd.DataFrame) -> list[str]:
    """Balance terms (levels of categorical or 0/1 characteristics) held by fewer than ``min_cell`` people in a group.

    Counted before matching (everyone) and after (the matched sample), among
    programme and comparison people, for the level and for its complement.
    """
    s = fit.settings
    mc = s.min_cell
    if mc <= 1:
        return []
    before = fit.data
    after = fit.match.data
    if "match_weight" in after.columns:
        after = after.loc[after["match_weight"] > 0]
    out = []
    terms = balance.drop_duplicates("term")
    for _, row in terms.iterrows():
        term, cov = str(row["term"]), str(row.get("covariate", row["term"]))
        if cov not in before.columns:
            continue
        if term.startswith(cov + "[") and term.endswith("]"):
            level = term[len(cov) + 1 : -1]

            def ind(d: pd.DataFrame, cov: str = cov, level: str = level) -> pd.Series:
                return d[cov].astype(str) == level
        elif row.get("kind") == "binary":

            def ind(d: pd.DataFrame, cov: str = cov) -> pd.Series:
                return pd.to_numeric(d[cov], errors="coerce") == 1
        else:
            continue
        for d in (before, after):
            flag = ind(d)
            for group in (0, 1):
                g = flag[d[s.treat] == group]
                for n in (int(g.sum()), int((~g).sum())):
                    if 0 < n < mc:
                        out.append(term)
        # one small count is enough
    return list(dict.fromkeys(out))


# -- estimate table ----------------------------------------------------------------------------------------------------
def estimate_table(fit: DidFit | MatchedFit) -> Html:
    """The main estimate with its uncertainty, sample and method; for Callaway-Sant'Anna also the other summaries."""
    r = fit.result
    level = round(100 * (1 - r.alpha))
    rows = [("Main estimate", r)]
    if isinstance(fit, DidFit) and fit.settings.estimator == "callaway_santanna":
        for kind, name in (("dynamic", "Average by time since start"), ("group", "Average over cohorts")):
            rows.append((name, r.aggregate(kind)))  # type: ignore[attr-defined]
    if isinstance(fit, MatchedFit):
        for g, (_, res) in fit.by_cohort.items():
            rows.append((f"Cohort {g} (matched within the cohort)", res))
    table = pd.DataFrame(
        {
            "summary": [n for n, _ in rows],
            "estimate": [x.estimate for _, x in rows],
            "standard error": [x.se for _, x in rows],
            f"{level}% CI low": [x.ci[0] for _, x in rows],
            f"{level}% CI high": [x.ci[1] for _, x in rows],
            "p-value": [x.pvalue for _, x in rows],
        }
    )
    facts = [
        ("Estimator", r.estimator),
        ("Outcome", f"{r.outcome}" + (f" ({fit.settings.outcome_label})" if fit.settings.outcome_label else "")),
        ("Observations", f"{r.nobs:,}"),
        ("Inference", r.inference),
    ]
    notes = _sdc_notes(fit.notes, fit.settings.min_cell)
    return Html(table_html(table) + _facts(facts) + notes_html(notes, title="Notes from the estimation"))


# -- robustness --------------------------------------------------------------------------------------------------------
def _row(kind: str, spec: str, run: Callable[[], Result], note: str = "") -> dict[str, Any]:
    notes: list[str] = []
    try:
        with _collect(notes):
            r = run()
    except (EvaluatorError, ValueError, np.linalg.LinAlgError) as exc:
        return {
            "specification": spec,
            "estimate": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "note": f"could not be estimated: {str(exc).splitlines()[0]}",
            "kind": kind,
        }
    lo, hi = r.ci
    return {
        "specification": spec,
        "estimate": r.estimate,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": r.pvalue,
        "note": note,
        "kind": kind,
    }


def _main_row(fit: DidFit | MatchedFit, label: str) -> dict[str, Any]:
    r = fit.result
    return {
        "specification": f"Main: {label}",
        "estimate": r.estimate,
        "ci_low": r.ci[0],
        "ci_high": r.ci[1],
        "p_value": r.pvalue,
        "note": "main specification",
        "kind": "main",
    }


def _placebo_panel(panel: pd.DataFrame, s: DidSettings, shift: int | None) -> tuple[pd.DataFrame, int] | None:
    """Pre-period data only, with the first cohort's start moved ``shift`` periods earlier."""
    g = panel[s.cohort]
    first = int(g[g != 0].min())
    pre = panel.loc[panel[s.time] < first]
    periods = int(pre[s.time].nunique())
    if periods < 3:
        return None
    k = shift if shift is not None else max(1, periods // 2)
    if not 1 <= k < periods:
        return None
    fake_g = np.where(pre[s.cohort] == first, first - k, 0)
    return pre.assign(**{s.cohort: fake_g}), k


def robustness_did(fit: DidFit, *, placebo_shift: int | None = None) -> pd.DataFrame:
    """The main estimate next to other reasonable specifications, as a tidy table.

    Rows: the main specification; the other comparison group and the other
    estimator (Callaway-Sant'Anna vs two-way fixed effects); the other inference
    scheme; without covariates (when there are any); leaving out each cohort in
    turn; and a placebo that pretends the first cohort started ``placebo_shift``
    periods early (half its pre-period by default), on data from before any real
    start only: it should be close to zero. Robustness rows use analytic
    inference to keep the run short. A specification that cannot be estimated
    gets missing numbers and the reason in ``note``.

    Returns
    -------
    pandas.DataFrame
        Columns ``specification, estimate, ci_low, ci_high, p_value, note, kind``
        (``kind``: main, comparison, estimator, inference, covariates,
        leave-one-out, placebo).
    """
    s, panel = fit.settings, fit.panel
    cs, tw = "callaway_santanna", "twfe"
    fast = {cs: "analytic", tw: "cluster"}
    names = {"never": "never-treated comparison", "notyet": "not-yet-treated comparison"}
    est_name = "Callaway-Sant'Anna" if s.estimator == cs else "Two-way fixed effects"
    label = f"{est_name}, {names[s.control_group]}" if s.estimator == cs else est_name
    rows = [_main_row(fit, f"{label}, {s.inference} inference")]
    twfe_covs = [] if s.covariates else None  # covariates of CS are pre-treatment; TWFE would absorb them
    twfe_note = "without the covariates (absorbed by unit effects)" if s.covariates else ""
    if s.estimator == cs:
        other = "notyet" if s.control_group == "never" else "never"
        rows.append(
            _row(
                "comparison",
                f"Callaway-Sant'Anna, {names[other]}",
                lambda: _estimate_did(panel, s, control=other, inference="analytic"),
            )
        )
        rows.append(
            _row(
                "estimator",
                "Two-way fixed effects",
                lambda: _estimate_did(panel, s, estimator=tw, inference="cluster", covariates=twfe_covs),
                twfe_note,
            )
        )
        alt_inf = "analytic" if s.inference == "bootstrap" else "bootstrap"
    else:
        for control in ("never", "notyet"):
            rows.append(
                _row(
                    "estimator" if control == "never" else "comparison",
                    f"Callaway-Sant'Anna, {names[control]}",
                    lambda c=control: _estimate_did(panel, s, estimator=cs, control=c, inference=fast[cs]),
                )
            )
        alt_inf = "wild" if s.inference == "cluster" else "cluster"
    rows.append(
        _row("inference", f"{est_name}, {alt_inf} inference", lambda: _estimate_did(panel, s, inference=alt_inf))
    )
    if s.covariates:
        rows.append(
            _row(
                "covariates",
                f"{est_name}, without covariates",
                lambda: _estimate_did(panel, s, inference=fast[s.estimator], covariates=[]),
            )
        )
    cohorts = sorted(int(g) for g in panel[s.cohort].unique() if g != 0)
    if len(cohorts) > 1:
        for g in cohorts:
            sub = panel.loc[panel[s.cohort] != g]
            rows.append(
                _row(
                    "leave-one-out",
                    f"Leaving out cohort {g}",
                    lambda sub=sub: _estimate_did(sub, s, inference=fast[s.estimator]),
                )
            )
    placebo = _placebo_panel(panel, s, placebo_shift)
    if placebo is None:
        rows.append(
            {
                "specification": "Placebo start",
                "estimate": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": np.nan,
                "note": "too few periods before the first start for a placebo",
                "kind": "placebo",
            }
        )
    else:
        pp, k = placebo
        rows.append(
            _row(
                "placebo",
                f"Placebo: start {k} periods early (pre-programme data only)",
                lambda: _estimate_did(pp, s, inference=fast[s.estimator]),
                "should be close to zero",
            )
        )
    return pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))


def robustness_matched(fit: MatchedFit) -> pd.DataFrame:
    """The main matched estimate next to other reasonable specifications, as a tidy table.

    Rows: the main specification; the other inference scheme(s) (the bootstrap is
    left out for time); with or without regression adjustment; the other
    distances; and inverse-probability weighting (IPW) and the doubly-robust
    augmented IPW on the whole sample (:func:`evaluator.weighting`), which do not
    depend on the match. Columns as :func:`robustness_did`.
    """
    from evaluator.matching import weighting

    s, m, data = fit.settings, fit.match, fit.data
    desc = {"logit": "logit propensity score", "ps": "propensity score", "mahalanobis": "Mahalanobis distance"}
    rows = [_main_row(fit, f"{desc[s.distance]}, {s.inference} inference" + (", adjusted" if s.adjust else ""))]
    fast = "abadie_imbens" if s.replace else "pairs"
    for inf in ("pairs", "abadie_imbens"):
        if inf != s.inference:
            rows.append(
                _row("inference", f"{desc[s.distance]}, {inf} inference", lambda i=inf: _effect(m, s, inference=i))
            )
    main_inf = s.inference if s.inference != "bootstrap" else fast
    # Abadie-Imbens always bias-corrects with the covariates, so adjustment is compared under pairs inference
    adj = not s.adjust
    rows.append(
        _row(
            "covariates",
            f"{desc[s.distance]}, pairs inference, {'with' if adj else 'without'} regression adjustment",
            lambda: _effect(m, s, inference="pairs", adjust=adj),
        )
    )
    for dist in ("logit", "ps", "mahalanobis"):
        if dist == s.distance:
            continue
        note = "without the caliper (not defined for Mahalanobis)" if dist == "mahalanobis" and s.caliper else ""
        rows.append(
            _row(
                "distance",
                f"Matching on the {desc[dist]}",
                lambda d=dist: _effect(_match(data, s, distance=d), s, inference=main_inf),
                note,
            )
        )
    covs = list(dict.fromkeys([*s.covariates, *s.exact]))
    for method, name in (("ipw", "Inverse-probability weighting"), ("aipw", "Doubly robust (AIPW)")):
        rows.append(
            _row(
                "weighting",
                name,
                lambda mt=method: weighting(
                    data, treat=s.treat, outcome=s.outcome, covariates=covs, method=mt, alpha=s.alpha
                ),
                "whole sample, no matching",
            )
        )
    return pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))


def robustness_table(table: pd.DataFrame, fit: DidFit | MatchedFit | None = None) -> Html:
    """The robustness table for readers, with a sentence on how far the estimates move."""
    shown = table.drop(columns=["kind"]).rename(
        columns={"ci_low": "CI low", "ci_high": "CI high", "p_value": "p-value", "estimate": "estimate"}
    )
    est = table.loc[table["kind"] != "placebo", "estimate"].dropna()
    text = ""
    if len(est) > 1:
        same = (np.sign(est) == np.sign(est.iloc[0])).all()
        text = f"Across {len(est)} specifications the estimate ranges from {_num(est.min())} to {_num(est.max())}" + (
            "; all point the same way." if same else "; they do not all point the same way."
        )
    placebo = table.loc[(table["kind"] == "placebo") & table["estimate"].notna()]
    if len(placebo):
        pl = placebo.iloc[0]
        ok = pl["ci_low"] <= 0 <= pl["ci_high"]
        text += f" The placebo estimate is {_num(pl['estimate'])}; its interval " + (
            "includes zero, as it should." if ok else "excludes zero: a warning sign for the design."
        )
    return Html(table_html(shown) + (f"<p>{esc(text)}</p>" if text else ""))


def robustness_figure(table: pd.DataFrame, fit: DidFit | MatchedFit) -> Html:
    """The specification curve of a robustness table, as a captioned figure."""
    from evaluator import plots

    fig = plots.specification_curve(table, outcome=fit.settings.outcome_label or fit.result.outcome or "")
    return figure_html(
        fig,
        "Specification curve: the estimate and its confidence interval under each specification, sorted by size; "
        "the main specification is highlighted. Placebo rows are left out.",
        css_class="specification-curve",
    )


# -- contract and value ------------------------------------------------------------------------------------------------
FINNISH_LESSON = (
    "Why the two can differ: a before/after (pre/post) rule pays on the change among participants, which also "
    "contains whatever would have happened anyway, such as a general fall in sick leave; the counterfactual estimate "
    "removes that change using the comparison group. In the Finnish sick-leave social impact bond the intervention's "
    "estimated effect was far smaller than the target, while the before/after comparison could still meet it."
)
RATE_CARD_LESSON = (
    "Why the two can differ: a rate card pays for every verified outcome, including the outcomes participants would "
    "have reached without the programme; the counterfactual payment prices only the outcomes the programme caused."
)


@dataclass
class ContractValue:
    """A report's contract and value: the settlement, the power to cross the threshold and the economic return.

    Built by :func:`contract_value`; shown by :func:`contract_section` and the headline box.
    """

    contract: Any
    settlement: Any
    settle_kwargs: dict[str, Any]
    threshold: float | None
    cut: float | None
    threshold_power: float | None
    economic: Any | None
    country: str | None
    observed_text: str = ""
    notes: list[str] = field(default_factory=list)


def _treated_post_mean(fit: DidFit) -> float:
    s, p = fit.settings, fit.panel
    g = p[s.cohort]
    rows = p.loc[(g != 0) & (p[s.time] >= g), s.outcome]
    return float(rows.mean())


def observed_pre_post(fit: DidFit, *, periods: int = 12) -> dict[str, float] | None:
    """The programme group's observed mean outcome before and after its start (``periods`` each side).

    Each treated unit's periods ``-periods .. -1`` and ``0 .. periods - 1`` relative to
    its own start; means over the units observed in both windows. This is what a
    pre/post contract pays on. ``None`` when no unit has both windows.
    """
    s, p = fit.settings, fit.panel
    g = p[s.cohort]
    t = p.loc[g != 0].assign(_e=p[s.time] - g)
    before = t.loc[(t["_e"] < 0) & (t["_e"] >= -periods)].groupby(s.unit)[s.outcome].mean()
    after = t.loc[(t["_e"] >= 0) & (t["_e"] < periods)].groupby(s.unit)[s.outcome].mean()
    both = before.index.intersection(after.index)
    if len(both) == 0:
        return None
    return {"before": float(before[both].mean()), "after": float(after[both].mean()), "units": int(len(both))}


def _comparison_level(m: Any, s: MatchedSettings) -> float | None:
    """Matched comparison group's (weighted) mean outcome: the counterfactual level."""
    d = m.data
    if "match_weight" not in d.columns or s.outcome not in d.columns:
        return None
    c = d.loc[(d[s.treat] == 0) & (d["match_weight"] > 0)]
    if c.empty:
        return None
    return float(np.average(c[s.outcome].to_numpy(float), weights=c["match_weight"].to_numpy(float)))


def _unit_cost_country(contract: Any) -> str | None:
    from evaluator.economics import load_unit_costs

    table = load_unit_costs(outcome=contract.metric)
    countries = [str(c).upper() for c in dict.fromkeys(table["country"])]
    if not countries:
        return None
    currency = {"UK": "GBP", "DK": "DKK"}
    for c in countries:
        if currency.get(c) == contract.currency:
            return c
    return countries[0]


def contract_value(fit: DidFit | MatchedFit) -> ContractValue | None:
    """Settle the report's contract on the main estimate and value the effect; ``None`` without a contract.

    The settlement (:func:`evaluator.contracts.settle`) uses: difference-in-differences:
    the main estimate, per-cohort effects (Callaway-Sant'Anna ``aggregate("group")``)
    for a per-cohort rule, the programme group's observed before/after means for a
    pre/post rule and its mean outcome after the start for a rate card; matched
    comparison: the main estimate, one match per cohort (``cohort`` parameter) for a
    per-cohort rule, the matched comparison group's mean as the level of a relative
    threshold and the participants' mean outcome for a rate card. The socio-economic
    return uses the bundled example unit costs (illustrative) with the contract's
    ``scale`` and participants; the public budget's cost is the payment due at the
    estimate when the currencies agree.
    """
    from evaluator import contracts as ec
    from evaluator.economics import load_unit_costs, socio_economic_return
    from evaluator.power import power

    s, r = fit.settings, fit.result
    c = s.contract
    if c is None:
        return None
    notes: list[str] = []
    kwargs: dict[str, Any] = {}
    observed_text = ""
    per_cohort = c.thresholds.get("per_cohort") is not None
    comparison: dict[Any, float] = {}
    if isinstance(fit, DidFit):
        if per_cohort:
            if s.estimator == "callaway_santanna":
                cohorts = ec._cohorts_from_result(r.aggregate("group"))  # type: ignore[attr-defined]
                if cohorts:
                    kwargs["cohorts"] = cohorts
            if "cohorts" not in kwargs:
                kwargs["overall_only"] = True
                notes.append("per-cohort payments need Callaway-Sant'Anna effects by cohort; only the overall rule")
        if c.measure == "relative":
            comparison["overall"] = _treated_post_mean(fit) - r.estimate
        if c.family == "pre_post_target":
            periods = c.baseline.get("periods", 12)
            periods = int(periods) if isinstance(periods, (int, float)) and periods >= 1 else 12
            obs = observed_pre_post(fit, periods=periods)
            if obs is not None:
                kwargs["observed"] = {"before": obs["before"], "after": obs["after"]}
                observed_text = (
                    f"Observed among the programme group: mean {s.outcome} {_num(obs['before'])} in the {periods} "
                    f"periods before each unit's start and {_num(obs['after'])} in the {periods} periods after "
                    f"(a change of {_num(obs['after'] - obs['before'])})."
                )
        elif c.family == "rate_card":
            level = _treated_post_mean(fit)
            kwargs["observed"] = level
            observed_text = f"Observed among the programme group after its start: mean {s.outcome} {_num(level)}."
    else:
        level = _comparison_level(fit.match, s)
        if level is not None:
            comparison["overall"] = level
        if per_cohort:
            if fit.by_cohort:
                kwargs["cohorts"] = {g: res for g, (_, res) in fit.by_cohort.items()}
                for g, (m, _) in fit.by_cohort.items():
                    lv = _comparison_level(m, s)
                    if lv is not None:
                        comparison[g] = lv
            else:
                kwargs["overall_only"] = True
                notes.append(
                    "the contract pays per cohort but no cohort column was given (parameter cohort): "
                    "only the overall rule is settled"
                )
        if c.family == "rate_card":
            t = fit.match.data
            treated = t.loc[(t[s.treat] == 1) & (t.get("match_weight", 1) > 0), s.outcome]
            kwargs["observed"] = float(treated.mean())
            observed_text = f"Observed among matched participants: mean {s.outcome} {_num(kwargs['observed'])}."
        elif c.family == "pre_post_target":
            notes.append("a matched comparison has no before/after measurement: the pre/post rule is not shown")
    if comparison and c.measure == "relative":
        kwargs["comparison"] = comparison
    with _collect(notes):
        settlement = ec.settle(c, r, **kwargs)
    notes.extend(n for n in settlement.notes if n not in notes)
    # the main threshold in the outcome's own units, and the power to cross it at the estimated effect
    threshold = c.thresholds.get("overall")
    if threshold is None:
        threshold = c.thresholds.get("per_cohort")
    cut = tp = None
    if threshold is not None:
        slope = ec._slope(c, comparison.get("overall"))
        if math.isfinite(slope) and slope != 0:
            cut = float(threshold) / slope
            g = fit.n_clusters
            df = g - 1 if g is not None and g < 50 else None
            if math.isfinite(r.se) and r.se > 0:
                tp = power(
                    r.estimate,
                    se=r.se,
                    threshold=cut,
                    direction="increase" if c.direction == "increase" else "reduction",
                    df=df,
                )
    # socio-economic return with the bundled example unit costs
    economic, country = None, _unit_cost_country(c)
    if country is None:
        notes.append(f"no bundled example unit costs for {c.metric}: the socio-economic return is not shown")
    else:
        costs = load_unit_costs(country, c.metric)
        currency = str(costs["currency"].iloc[0])
        main_payer = str(costs.loc[costs["cost"].abs().idxmax(), "payer"])
        cost: Any = 0.0
        if currency == c.currency:
            cost = {main_payer: settlement.due}
        else:
            notes.append(
                f"the contract is in {c.currency or 'no currency'} but the example unit costs in {currency}: the "
                "outcome payments are left out of the socio-economic return"
            )
        try:
            with _collect(notes):
                economic = socio_economic_return(
                    r,
                    participants=c.participants if c.participants > 1 else fit.n_treated,
                    unit_costs=costs,
                    horizon_years=int(c.horizon_years or 5),
                    discount_rate=c.discount_rate,
                    intervention_cost=cost,
                    outcome=c.metric,
                    country=country,
                    scale=c.scale,
                    currency=currency,
                )
        except (EvaluatorError, ValueError) as exc:
            notes.append(f"the socio-economic return could not be computed: {exc}")
    return ContractValue(
        contract=c,
        settlement=settlement,
        settle_kwargs=kwargs,
        threshold=None if threshold is None else float(threshold),
        cut=cut,
        threshold_power=tp,
        economic=economic,
        country=country,
        observed_text=observed_text,
        notes=notes,
    )


def _money(value: ContractValue, x: float) -> str:
    return value.settlement._money(float(x))


def contract_verdict(value: ContractValue | None) -> str:
    """The headline's contract line: whether the target was met and what is owed (plain text).

    "yes/no: ... ; payment due: X (between A and B across the 95% interval)".
    """
    if value is None:
        return "no contract terms given."
    st = value.settlement
    rules = st.rules
    level = round(100 * (1 - st.alpha))
    has_threshold = "threshold" in rules and rules["threshold"].notna().any()
    met = rules["met"].dropna() if "met" in rules and has_threshold else pd.Series(dtype=object)
    if len(met):
        last = bool(rules["met"].iloc[-1]) if pd.notna(rules["met"].iloc[-1]) else bool(met.any())
        each = "; ".join(f"{row['rule']}: {'met' if row['met'] else 'not met'}" for _, row in rules.iterrows())
        head = f"{'yes' if last else 'no'}: {each}"
    else:
        head = f"no threshold ({value.contract.family.replace('_', ' ')}): paid per outcome"
    lo, hi = sorted([st.payments["ci_low"], st.payments["ci_high"]])
    return (
        f"{head}; payment due: {_money(value, st.due)} (between {_money(value, lo)} and {_money(value, hi)} across "
        f"the {level}% interval)."
    )


def _tornado(table: pd.DataFrame, caption: str, label: str) -> Html:
    from evaluator.economics import plot_tornado

    return figure_html(plot_tornado(table, label=label), caption, css_class="tornado")


def contract_section(fit: DidFit | MatchedFit, value: ContractValue | None) -> Html:
    """The "Contract and value" section: settlement, own rule, power to cross the threshold, economic return.

    One line ("No contract terms were given.") without a contract.
    """
    from evaluator import contracts as ec

    if value is None:
        return Html("<p>No contract terms were given.</p>")
    s, r, c, st = fit.settings, fit.result, value.contract, value.settlement
    level = round(100 * (1 - st.alpha))
    label = s.outcome_label or s.outcome
    parts = [f"<p>{esc(c.describe()[0].upper() + c.describe()[1:])}</p>", Html(st._repr_html_())]
    rules = st.rules
    facts = [
        ("Payment due at the estimate", _money(value, st.payments["estimate"])),
        (f"at the lower end of the {level}% interval of the effect", _money(value, st.payments["ci_low"])),
        (f"at the upper end of the {level}% interval of the effect", _money(value, st.payments["ci_high"])),
        ("Present value at the estimate", f"{_money(value, st.present_value['estimate'])} at {c.discount_rate:.1%}"),
    ]
    for _, row in rules.iterrows():
        p = row.get("p_met")
        if p is not None and pd.notna(p):
            facts.append((f"Probability the threshold was met ({row['rule']})", f"{100 * float(p):.0f}%"))
    facts.append(("How the probabilities were computed", st.probability_method))
    if st.investor is not None and len(st.investor):
        inv = st.investor.iloc[0]
        irr = f"{inv['irr']:.1%}" if math.isfinite(inv["irr"]) else f"undefined ({inv['irr_note']})"
        facts.append(("Investor at the estimate", f"multiple {inv['multiple']:.2f}, internal rate of return {irr}"))
    parts.append(_facts(facts))
    if value.observed_text:
        parts.append(f"<p>{esc(value.observed_text)}</p>")
    if st.own_rule is not None:
        comp = st.to_frame("comparison")
        parts.append("<p>The contract's own rule beside the payment on the counterfactual estimate:</p>")
        parts.append(table_html(comp))
        parts.append(f"<p>{esc(FINNISH_LESSON if c.family == 'pre_post_target' else RATE_CARD_LESSON)}</p>")
    parts.append(
        figure_html(
            st.plot(),
            "Payment due under the contract: at the estimated effect, at both ends of its confidence interval and, "
            "where it differs, under the contract's own rule.",
            css_class="settlement",
        )
    )
    # power to cross the threshold
    if value.cut is not None:
        mde = _mde(fit)
        text = f"The contract threshold corresponds to an effect of {_num(value.cut)} {label}."
        if value.threshold_power is not None:
            text += (
                f" If the true effect were the estimated {_num(r.estimate)}, a repeat of this evaluation would "
                f"produce an estimate beyond the threshold with probability {100 * value.threshold_power:.0f}% "
                "(power to cross the threshold, from the estimate's standard error)."
            )
        from evaluator.power import threshold_sentence

        text += " " + threshold_sentence(value.cut, mde, label=label)
        parts.append(f"<p>{esc(text)}</p>")
    # settlement sensitivity
    try:
        with _collect([]):
            sens = ec.settlement_sensitivity(c, r, **value.settle_kwargs)
        parts.append(
            _tornado(
                sens,
                "Sensitivity of the settlement: the present value of the payments when one assumption at a time moves "
                "from its low to its high value (the effect over its confidence interval).",
                f"present value of payments ({c.currency})".replace(" ()", ""),
            )
        )
    except (EvaluatorError, ValueError) as exc:
        value.notes.append(f"the settlement's sensitivity could not be computed: {exc}")
    # socio-economic return
    ser = value.economic
    parts.append("<h4>What the effect is worth to the public budget (illustrative)</h4>")
    if ser is None:
        parts.append("<p>No socio-economic return could be computed for this outcome.</p>")
    else:
        cur = ser.params.get("currency") or ""
        parts.append(
            "<p><b>Illustrative:</b> every figure below uses the example unit costs bundled with evaluator "
            f"({esc(str(value.country))}, {esc(cur)}), which are placeholders to replace with published unit costs. "
            f"{esc(ser.sentence)}</p>"
        )
        npv = pd.DataFrame(
            {
                "payer": list(ser.npv),
                f"net present value ({cur}, illustrative)": [f"{v:,.0f}" for v in ser.npv.values()],
            }
        )
        parts.append(table_html(npv, css_class="evaluator-table npv-by-payer"))
        be = (
            f"Break-even year (illustrative): year {ser.break_even_year}."
            if ser.break_even_year is not None
            else "Break-even year (illustrative): not within the horizon."
        )
        parts.append(f"<p>{esc(be)}</p>")
        parts.append(
            figure_html(
                ser.plot(),
                "Cumulative discounted net saving to the public budget by payer and in total (illustrative unit "
                "costs); the dashed line marks the break-even year.",
                css_class="economic-return",
            )
        )
        try:
            with _collect([]):
                table = ser.sensitivity()
            parts.append(
                _tornado(
                    table,
                    "Sensitivity of the net present value (illustrative): one assumption at a time from its low to its "
                    "high value.",
                    f"net present value ({cur})",
                )
            )
        except (EvaluatorError, ValueError) as exc:
            value.notes.append(f"the socio-economic sensitivity could not be computed: {exc}")
    parts.append(notes_html(value.notes, title="Notes on the contract"))
    return Html("<div class='contract-value'>" + "".join(parts) + "</div>")


def settlement_record(value: ContractValue | None) -> dict[str, Any] | None:
    """What ``save_results(..., settlement=...)`` stores: the settlement, NPV by payer and the threshold power."""
    if value is None:
        return None
    out = value.settlement.to_dict()
    ser = value.economic
    out["npv"] = None if ser is None else float(ser.npv["total"])
    out["npv_by_payer"] = None if ser is None else {k: float(v) for k, v in ser.npv.items()}
    out["break_even_year"] = None if ser is None else ser.break_even_year
    out["threshold_effect"] = value.cut
    out["threshold_power"] = value.threshold_power
    return out


# -- minimum detectable effect -----------------------------------------------------------------------------------------
def mde_sentence(
    mde: float,
    *,
    estimate: float,
    target: float | None = None,
    outcome_label: str = "",
    alpha: float = 0.05,
    power: float = 0.8,
) -> str:
    """What the minimum detectable effect means for this evaluation, in words.

    Says whether the estimate is larger than the MDE and, given a contract
    ``target``, whether the target could ever be detected with this design.

    Examples
    --------
    >>> mde_sentence(0.3, estimate=-0.45, target=0.2, outcome_label="days")  # doctest: +ELLIPSIS
    'With this data... The contract target of 0.2 days is smaller than the MDE: ... could not reliably tell an...'
    """
    label = f" {outcome_label}" if outcome_label else ""
    level = round(100 * alpha)
    text = (
        f"With this data, a true effect of {_num(mde)}{label} or more (in either direction) would be found "
        f"statistically significant at the {level}% level with {round(100 * power)}% probability: this is the "
        "minimum detectable effect (MDE)."
    )
    if abs(estimate) >= mde:
        text += f" The estimated effect ({_num(estimate)}) is larger than the MDE."
    else:
        text += (
            f" The estimated effect ({_num(estimate)}) is smaller than the MDE: the evaluation could not reliably "
            "detect an effect of this size, so a non-significant result is weak evidence of no effect."
        )
    if target is None:
        text += " No contract target was given to compare with the MDE."
    elif abs(target) < mde:
        text += (
            f" The contract target of {_num(abs(target))}{label} is smaller than the MDE: this evaluation could not "
            "reliably tell an effect of the target size from no effect, so meeting it cannot be confirmed."
        )
    else:
        text += f" The contract target of {_num(abs(target))}{label} is at least the MDE, so this design can detect it."
    return text


def mde_section(
    fit: DidFit | MatchedFit,
    value: ContractValue | None = None,
    *,
    target: float | None = None,
    power: float = 0.8,
) -> Html:
    """The minimum detectable effect of the main estimate and what it means (few clusters: t with G - 1 df).

    With a contract (``value``) the target is the contract's threshold in the outcome's units.
    """
    r, s = fit.result, fit.settings
    if target is None and value is not None and value.cut is not None:
        target = value.cut
    g = fit.n_clusters
    df = g - 1 if g is not None and g < 50 else None
    mde = minimum_detectable_effect(r, alpha=r.alpha, power=power, df=df)
    how = f"t distribution with {df} degrees of freedom ({g} clusters)" if df else "normal distribution"
    text = mde_sentence(
        mde, estimate=r.estimate, target=target, outcome_label=s.outcome_label, alpha=r.alpha, power=power
    )
    return Html(
        f"<p>{esc(text)}</p><p><small>Computed as (critical value + power quantile) x standard error "
        f"= {esc(_num(mde, 4))}, with the {esc(how)}.</small></p>"
    )


def _mde(fit: DidFit | MatchedFit) -> float:
    g = fit.n_clusters
    return minimum_detectable_effect(fit.result, alpha=fit.result.alpha, df=g - 1 if g is not None and g < 50 else None)


# -- appendix ----------------------------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("evaluator", "numpy", "pandas", "scipy", "statsmodels", "matplotlib", "papermill"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def appendix(fit: DidFit | MatchedFit, *, manifest: str | Path = "manifest.json") -> Html:
    """Technical appendix: estimator and inference, the full result summary, parameters, versions, manifest."""
    r, s = fit.result, fit.settings
    mc = s.min_cell
    shown, foot = r, ""
    if isinstance(fit, DidFit):
        small = _small_cohorts(fit)
        if small and "cohort" in r.table.columns:
            keep = ~r.table["cohort"].isin(small)
            shown = replace(r, table=r.table.loc[keep].reset_index(drop=True))
            foot = (
                f"<p><small>The group-time effects ATT(g,t) of {len(small)} cohort(s) with fewer than {mc} units are "
                "not shown (statistical disclosure control); they are part of every aggregate above.</small></p>"
            )
    parts = [
        "<h4>Estimator</h4>",
        _facts([("Estimator", r.estimator), ("Inference", r.inference), ("Design", fit.design)]),
        notes_html(_sdc_notes(list(r.notes), mc), title="Notes"),
        "<h4>Full output</h4>",
        f"<pre>{esc(_mask_small(shown.summary(), mc))}</pre>",
        foot,
    ]
    if isinstance(fit, DidFit):
        parts += [
            f"<h4>Event study ({esc(fit.event.estimator)})</h4>",
            f"<pre>{esc(_mask_small(fit.event.summary(), mc))}</pre>",
        ]
    parts += ["<h4>Parameters</h4>", _facts([(k, json.dumps(v)) for k, v in s.as_dict().items()])]
    parts += ["<h4>Software</h4>", _facts(list(_versions().items()))]
    path = Path(manifest)
    if path.is_file():
        try:
            text = json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2)
        except (OSError, ValueError) as exc:
            text = f"manifest.json could not be read: {exc}"
        parts += ["<h4>Run manifest</h4>", f"<pre>{esc(text)}</pre>"]
    else:
        parts.append(
            "<p><small>The run manifest (input checksums, versions, timing) is written beside this report as "
            "manifest.json.</small></p>"
        )
    return Html("".join(parts))


def results_extra(fit: DidFit | MatchedFit, robustness: pd.DataFrame | None = None) -> dict[str, Any]:
    """Extra numbers for ``results.json``: parameters, MDE, pre-trend check, robustness and notes."""
    extra: dict[str, Any] = {
        "parameters": fit.settings.as_dict(),
        "mde": _mde(fit),
        "notes": list(fit.notes),
        "min_cell": fit.settings.min_cell,
    }
    if isinstance(fit, DidFit):
        extra["pretrend"] = {k: v for k, v in fit.pretrend.items() if k != "sentence"}
        extra["n_clusters"] = fit.n_clusters
    else:
        extra["match"] = {k: int(v) if float(v).is_integer() else float(v) for k, v in fit.match.summary().items()}
    if robustness is not None:
        extra["robustness"] = robustness.replace({np.nan: None}).to_dict(orient="records")
    return extra
