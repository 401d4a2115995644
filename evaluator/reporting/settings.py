"""Report parameters: the settings a report notebook's parameters cell is checked into."""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from evaluator.data.datasets import resolve_data
from evaluator.errors import ContractError, ParameterError
from evaluator.i18n import LANGUAGES

__all__ = [
    "ALPHA_RANGE",
    "CONTROL_GROUPS",
    "DID_INFERENCE",
    "DID_METHODS",
    "DID_MIN_DRAWS",
    "DISTANCES",
    "ESTIMATORS",
    "FORMER_SPELLINGS",
    "MATCHED_INFERENCE",
    "MATCHED_MIN_DRAWS",
    "ROW_ID",
    "SYNTHETIC_METHODS",
    "SYNTHETIC_MIN_REPS",
    "DidSettings",
    "MatchedSettings",
    "SyntheticSettings",
    "did_settings",
    "matched_settings",
    "synthetic_settings",
]

# -- the rules -----------------------------------------------------------------------------------------------------
# One place for each rule of a report parameter. The notebooks' parameters cells declare the same rules in their
# comments (``# one of: ...``, ``# range: ...``; grammar in evaluator.runner.parameters), so that a run is checked
# before its kernel starts; tests/test_parameter_checks.py checks that both accept and refuse the same values.

#: Difference-in-differences estimators: Callaway and Sant'Anna (2021) group-time effects, two-way fixed effects.
ESTIMATORS = ("callaway_santanna", "twfe")
#: Comparison units of Callaway-Sant'Anna, spelt as :func:`evaluator.staggered_did` (``control=``) spells them.
CONTROL_GROUPS = ("never", "not_yet")
#: Former spellings still accepted, with a :class:`FutureWarning`: parameter -> {old: current}.
FORMER_SPELLINGS: Mapping[str, Mapping[str, str]] = {"control_group": {"notyet": "not_yet"}}
#: Callaway-Sant'Anna with covariates: doubly robust, inverse probability weighting, outcome regression.
DID_METHODS = ("dr", "ipw", "reg")
#: Inference schemes of each estimator; the first is the default.
DID_INFERENCE: Mapping[str, tuple[str, ...]] = {
    "callaway_santanna": ("bootstrap", "analytic"),
    "twfe": ("cluster", "wild"),
}
#: Fewest draws of a difference-in-differences bootstrap (inference "bootstrap" or "wild"); 999 is usual.
DID_MIN_DRAWS = 99
#: Matching distances: logit of the propensity score, the score, Mahalanobis distance.
DISTANCES = ("logit", "ps", "mahalanobis")
#: Inference of a matched comparison (see :meth:`evaluator.MatchResult.effect`).
MATCHED_INFERENCE = ("pairs", "abadie_imbens", "bootstrap")
#: Fewest bootstrap replications of a matched comparison.
MATCHED_MIN_DRAWS = 2
#: The unit column a repeated cross-section without person ids gets: one id per row.
ROW_ID = "_row"
#: Synthetic comparisons of one treated unit: synthetic DiD, synthetic control, DiD with uniform weights.
SYNTHETIC_METHODS = ("sdid", "sc", "did")
#: Fewest placebo replications of a synthetic comparison's standard error (synthdid's default is 200); fewer than
#: 50 leave the standard error itself noisy (its Monte Carlo error is about 10%).
SYNTHETIC_MIN_REPS = 50
#: ``alpha`` lies strictly between these (0.05 gives 95% intervals).
ALPHA_RANGE = (0.0, 0.5)


# -- parameters --------------------------------------------------------------------------------------------------------
def _text(problems: list[str], name: str, value: Any, *, empty: bool = False) -> None:
    if not isinstance(value, str) or (not empty and not value.strip()):
        problems.append(f"{name}={value!r}: expected {'text' if empty else 'a non-empty column name'}")


def _one_of(problems: list[str], name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(value.lower(), list(allowed), n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{name}={value!r}: choose one of {list(allowed)}{hint}")


def _current(name: str, value: Any) -> Any:
    """``value`` in its current spelling; a former one (:data:`FORMER_SPELLINGS`) with a FutureWarning."""
    new = FORMER_SPELLINGS.get(name, {}).get(value) if isinstance(value, str) else None
    if new is None:
        return value
    warnings.warn(
        f"{name}={value!r} is deprecated, a former spelling of {new!r}: write {name}={new!r}",
        FutureWarning,
        stacklevel=3,
    )
    return new


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
    a, (low, high) = p["alpha"], ALPHA_RANGE
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not low < a < high:
        problems.append(f"alpha={a!r}: expected a number between {low:g} and {high:g} (0.05 gives 95% intervals)")
    for name in ("seed", "min_cell"):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            problems.append(f"{name}={v!r}: expected a whole number >= 0")
    _text(problems, "title", p["title"], empty=True)
    _text(problems, "outcome_label", p["outcome_label"], empty=True)
    _text(problems, "evaluated_by", p["evaluated_by"], empty=True)
    _one_of(problems, "language", p["language"], list(LANGUAGES))
    rate = p["exchange_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate >= 0 or rate == float("inf"):
        problems.append(
            f"exchange_rate={rate!r}: expected a number >= 0: units of the unit costs' currency per unit of the "
            "contract's currency (e.g. 7.46 for DKK per EUR), or 0 for none"
        )
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
    from evaluator.contracts.terms import Contract

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
    weights: str = ""
    panel: bool = True
    allow_unbalanced_panel: bool = False
    language: str = "en"
    evaluated_by: str = ""
    exchange_rate: float = 0.0
    out_of_core: bool = False
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
    weights: str = "",
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    language: str = "en",
    evaluated_by: str = "",
    exchange_rate: float = 0.0,
    out_of_core: bool = False,
) -> DidSettings:
    """Check a difference-in-differences report's parameters; every problem is listed in one error.

    Parameters
    ----------
    estimator : {"callaway_santanna", "twfe"}
        Callaway and Sant'Anna (2021) group-time effects, or two-way fixed effects.
    control_group : {"never", "not_yet"}
        Comparison units for Callaway-Sant'Anna: never treated, or not yet treated
        (spelt as ``staggered_did(control=...)``; the former ``"notyet"`` is still
        accepted, with a :class:`FutureWarning`). Two-way fixed effects always compares
        with every unit not (yet) treated; the default ``"never"`` is recorded with a note.
    method : {"dr", "ipw", "reg"}
        Callaway-Sant'Anna with covariates: doubly robust, weighting or regression.
    inference : str, optional
        Callaway-Sant'Anna: ``"bootstrap"`` (multiplier bootstrap, ``n_boot`` draws,
        clustered) or ``"analytic"``. Two-way fixed effects: ``"cluster"`` (CR1) or
        ``"wild"`` (wild cluster bootstrap). Default: the first of each pair.
    weights : str
        Column of sampling weights, constant within a unit ("": none), as R did's ``weightsname``.
    panel : bool
        ``False``: repeated cross-sections (one row per person and period, ``unit`` may be
        ``""``); Callaway-Sant'Anna only.
    allow_unbalanced_panel : bool
        Use every observation of units not seen in every period, as R did; ``False``
        drops those units with a note. Callaway-Sant'Anna only.
    language : {"en", "da", "sv", "fi"}
        The report's language (:data:`evaluator.i18n.LANGUAGES`); the notebook activates it.
    evaluated_by : str
        Who evaluated (a person or an organisation), printed on the first page with the date.
    exchange_rate : float
        Units of the unit costs' currency per unit of the contract's currency (7.46 for DKK per
        EUR), when the two differ: the payments enter the socio-economic return converted at this
        rate, stated on the page. ``0``: none (the payments are then left out of it, with a note).
    out_of_core : bool
        Read a Parquet file in passes, never whole in memory (a folder of Parquet files always
        is; its rows sorted by unit, then period): Callaway-Sant'Anna on a panel, analytic or
        bootstrap intervals, no sampling weights yet.
    Other parameters are those of the notebook's parameters cell.

    Raises
    ------
    ParameterError
        Listing every parameter with a problem, its value and what is allowed.
    ContractError
        When the file ``contract_path`` names is not a valid contract (the message
        names the field), or pays on another metric than ``outcome``.

    Warns
    -----
    FutureWarning
        ``control_group="notyet"``: write ``"not_yet"``.

    Examples
    --------
    >>> did_settings(data_path="x.csv", unit="id", time="t", outcome="y", cohort="g",
    ...              estimator="twfe", inference="bootstrap")
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: the report's parameters have problems:
      - inference='bootstrap': with estimator='twfe' choose one of ['cluster', 'wild']
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     s = did_settings(data_path="x.csv", unit="id", time="t", outcome="y", cohort="g", control_group="notyet")
    >>> s.control_group, caught[0].category.__name__
    ('not_yet', 'FutureWarning')
    """
    problems: list[str] = []
    p = dict(locals())
    p.pop("problems")
    _common(problems, p)
    for name in ("time", "outcome", "cohort") if panel is False else ("unit", "time", "outcome", "cohort"):
        _text(problems, name, p[name])
    for name in ("panel", "allow_unbalanced_panel"):
        if not isinstance(p[name], bool):
            problems.append(f"{name}={p[name]!r}: expected True or False")
    if not isinstance(weights, str):
        problems.append(f"weights={weights!r}: expected a column name, or '' for no sampling weights")
    if estimator == "twfe" and (panel is False or allow_unbalanced_panel is True):
        problems.append(
            "estimator='twfe' needs a panel of units: repeated cross-sections (panel=False) and unbalanced panels "
            "(allow_unbalanced_panel=True) are for estimator='callaway_santanna'"
        )
    if cluster is not None and not isinstance(cluster, str):
        problems.append(f"cluster={cluster!r}: expected a column name, or '' for clustering on units")
    covs = _columns_list(problems, "covariates", covariates)
    _one_of(problems, "estimator", estimator, ESTIMATORS)
    control_group = _current("control_group", control_group)
    _one_of(problems, "control_group", control_group, CONTROL_GROUPS)
    _one_of(problems, "method", method, DID_METHODS)
    schemes = DID_INFERENCE
    if estimator in schemes:
        if inference is None:
            inference = schemes[estimator][0]
        elif inference not in schemes[estimator]:
            problems.append(
                f"inference={inference!r}: with estimator={estimator!r} choose one of {list(schemes[estimator])}"
            )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        problems.append(f"n_boot={n_boot!r}: expected a whole number of bootstrap draws >= 0")
    elif n_boot < DID_MIN_DRAWS and inference in ("bootstrap", "wild"):
        problems.append(f"n_boot={n_boot!r}: a bootstrap needs at least {DID_MIN_DRAWS} draws (999 is usual)")
    if not isinstance(out_of_core, bool):
        problems.append(f"out_of_core={out_of_core!r}: expected True or False")
    elif isinstance(data_path, str) and not data_path.startswith("bundled:") and Path(data_path).expanduser().is_dir():
        out_of_core = True  # a folder of Parquet files is never read whole
    if out_of_core is True:
        _out_of_core_rules(
            problems,
            estimator=estimator,
            inference=inference,
            weights=weights,
            panel=panel,
            covariates=covs,
            allow_unbalanced_panel=allow_unbalanced_panel,
            cluster=cluster,
            data_path=data_path,
        )
    contract = _finish(problems, contract_path, outcome)
    return DidSettings(
        data_path=data_path,
        # repeated cross-sections without an id: each row is its own unit (load_did adds the column)
        unit=unit or (ROW_ID if panel is False else unit),
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
        weights=weights or "",
        panel=panel,
        allow_unbalanced_panel=allow_unbalanced_panel,
        language=language,
        evaluated_by=evaluated_by,
        exchange_rate=float(exchange_rate),
        out_of_core=out_of_core is True,
        contract=contract,
    )


def _out_of_core_rules(problems: list[str], **given: Any) -> None:
    """What a report on data read out of core can estimate: Callaway-Sant'Anna on a panel (what the report's passes
    compute)."""
    why = "out of core (a folder of Parquet files, or out_of_core=True)"
    g = given
    if g["estimator"] != "callaway_santanna":
        problems.append(f"estimator={g['estimator']!r}: {why} the report estimates with 'callaway_santanna' only")
    if g["panel"] is False:
        problems.append(f"panel=False: {why} the data must be a panel of units")
    data = g["data_path"]
    if isinstance(data, str) and not data.startswith("bundled:"):
        path = Path(data).expanduser()
        if path.is_file() and path.suffix.lower() not in (".parquet", ".pq"):
            problems.append(f"data_path={data!r}: {why} reads Parquet files; convert the file to Parquet")


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
    language: str = "en"
    evaluated_by: str = ""
    exchange_rate: float = 0.0
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
    language: str = "en",
    evaluated_by: str = "",
    exchange_rate: float = 0.0,
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
    evaluator.errors.ParameterError: the report's parameters have problems:
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
    _one_of(problems, "distance", distance, DISTANCES)
    _one_of(problems, "inference", inference, MATCHED_INFERENCE)
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        problems.append(f"ratio={ratio!r}: expected a whole number of controls per treated unit >= 1")
    for name, value in (("replace", replace), ("adjust", adjust)):
        if not isinstance(value, bool):
            problems.append(f"{name}={value!r}: expected True or False")
    if caliper is not None:
        if isinstance(caliper, bool) or not isinstance(caliper, (int, float)) or not 0 < caliper < math.inf:
            problems.append(f"caliper={caliper!r}: expected a positive number or None")
        elif distance == "mahalanobis":
            problems.append(
                f"caliper={caliper!r}: a caliper is in standard deviations of the propensity score and cannot be "
                "used with distance='mahalanobis'; set caliper = None"
            )
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < MATCHED_MIN_DRAWS:
        problems.append(f"n_boot={n_boot!r}: expected a whole number of bootstrap replications >= {MATCHED_MIN_DRAWS}")
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
        language=language,
        evaluated_by=evaluated_by,
        exchange_rate=float(exchange_rate),
        contract=contract,
    )


@dataclass(frozen=True)
class SyntheticSettings:
    """The checked parameters of a synthetic-control report of one treated unit (see :func:`synthetic_settings`)."""

    data_path: str
    unit: str
    time: str
    outcome: str
    treated: str
    title: str = "Synthetic control evaluation"
    outcome_label: str = ""
    method: str = "sdid"
    n_reps: int = 200
    alpha: float = 0.05
    seed: int = 1
    contract_path: str = ""
    min_cell: int = 5
    language: str = "en"
    evaluated_by: str = ""
    exchange_rate: float = 0.0
    contract: Any = field(default=None, compare=False, repr=False)
    design: str = field(default="synthetic control", init=False)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for the appendix and results.json)."""
        return _as_dict(self, [])


def synthetic_settings(
    *,
    data_path: str,
    unit: str,
    time: str,
    outcome: str,
    treated: str,
    title: str = "Synthetic control evaluation",
    outcome_label: str = "",
    method: str = "sdid",
    n_reps: int = 200,
    alpha: float = 0.05,
    seed: int = 1,
    contract_path: str = "",
    min_cell: int = 5,
    language: str = "en",
    evaluated_by: str = "",
    exchange_rate: float = 0.0,
) -> SyntheticSettings:
    """Check a synthetic-control report's parameters; every problem is listed in one error.

    Parameters
    ----------
    treated : str
        A 0/1 column: 1 for the treated unit in its programme periods (as :func:`evaluator.synthetic`).
    method : {"sdid", "sc", "did"}
        The headline estimator: synthetic difference-in-differences, synthetic control, or
        difference-in-differences with uniform weights; the report shows all three as robustness.
    n_reps : int
        Placebo replications of the standard error (at least :data:`SYNTHETIC_MIN_REPS`).
    Other parameters are those of the notebook's parameters cell (as :func:`did_settings`).

    Raises
    ------
    ParameterError, ContractError
        As :func:`did_settings`.

    Examples
    --------
    >>> synthetic_settings(data_path="x.csv", unit="m", time="year", outcome="y", treated="d", method="synth")
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: the report's parameters have problems:
      - method='synth': choose one of ['sdid', 'sc', 'did']
    """
    problems: list[str] = []
    p = dict(locals())
    p.pop("problems")
    _common(problems, p)
    for name in ("unit", "time", "outcome", "treated"):
        _text(problems, name, p[name])
    _one_of(problems, "method", method, SYNTHETIC_METHODS)
    if isinstance(n_reps, bool) or not isinstance(n_reps, int) or n_reps < SYNTHETIC_MIN_REPS:
        problems.append(
            f"n_reps={n_reps!r}: expected a whole number of placebo replications >= {SYNTHETIC_MIN_REPS} (200 is usual)"
        )
    contract = _finish(problems, contract_path, outcome)
    return SyntheticSettings(
        data_path=data_path,
        unit=unit,
        time=time,
        outcome=outcome,
        treated=treated,
        title=title,
        outcome_label=outcome_label,
        method=method,
        n_reps=n_reps,
        alpha=float(alpha),
        seed=seed,
        contract_path=contract_path or "",
        min_cell=min_cell,
        language=language,
        evaluated_by=evaluated_by,
        exchange_rate=float(exchange_rate),
        contract=contract,
    )
