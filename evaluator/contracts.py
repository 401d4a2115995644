"""Outcome contracts and their settlement: what does an estimated effect trigger?

A :class:`Contract` holds the terms of a social impact bond or payment-by-results
contract, read from YAML or JSON and validated against
``data_schemas/contract.schema.json``. :func:`settle` applies the terms to an
estimated effect and returns a :class:`Settlement`: the payment due at the point
estimate and at both ends of its confidence interval, the probability that each
threshold was met, payments per cohort, the investor's multiple and internal rate
of return, and one plain-language sentence.

Five payment families are supported (``payment.family``):

- ``counterfactual_threshold`` (a): paid when the improvement against a comparison
  group reaches a threshold, per cohort (early payments) and over all cohorts (the
  final payment), as at Peterborough (10% per cohort, 7.5% overall).
- ``fiscal_share`` (b): a share of the measured net fiscal gain against a control
  group (the Finnish integration SIB: 50% of the difference in taxes paid minus
  transfers received).
- ``pre_post_target`` (c): a target improvement against a historical baseline (the
  Finnish sick-leave SIB: 2.1 fewer sick-leave days per person per year).
- ``rate_card`` (d): a fixed price per verified outcome.
- ``savings_share`` (e): repayment out of a share of the savings, with the bonus
  on top of the capital capped (Norrkoping).

Where the contract's own rule is not counterfactual (pre/post and rate card), the
settlement also shows what that rule pays on the observed figures, next to what the
counterfactual estimate would pay: a pre/post rule cannot separate the intervention
from the general trend (the lesson of the Finnish sick-leave SIB).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from evaluator.errors import ContractError, Problem
from evaluator.results import Result, _fmt, _jsonable

__all__ = [
    "FAMILIES",
    "Contract",
    "Settlement",
    "irr",
    "read_contract",
    "settle",
    "settlement_sensitivity",
    "validate_contract",
]

Family = Literal["counterfactual_threshold", "fiscal_share", "pre_post_target", "rate_card", "savings_share"]
FAMILIES: tuple[str, ...] = (
    "counterfactual_threshold",
    "fiscal_share",
    "pre_post_target",
    "rate_card",
    "savings_share",
)
FAMILY_LABELS = {
    "counterfactual_threshold": "counterfactual threshold",
    "fiscal_share": "share of the net fiscal gain",
    "pre_post_target": "pre/post target against a baseline",
    "rate_card": "rate card (price per verified outcome)",
    "savings_share": "share of savings with a capped bonus",
}
#: Keys of ``Result.info`` under which an estimator may leave bootstrap draws of the headline estimate.
DRAW_KEYS: tuple[str, ...] = ("draws", "boot_estimates", "boot_draws")
#: Keys of ``Result.info`` that may hold the comparison group's level of the outcome.
COMPARISON_KEYS: tuple[str, ...] = ("comparison_mean", "mean_control", "control_mean")
#: Discount rates above this are refused as a percentage written by mistake.
MAX_RATE = 0.25
#: Day count of the internal rate of return: actual days / 365, as Excel's XIRR.
DAYS_PER_YEAR = 365.0


# -- schema validation --------------------------------------------------------------
def _schema() -> dict[str, Any]:
    from evaluator.data import read_schema

    return read_schema("contract")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, (list, tuple))
    if kind == "date":
        return _as_date(value) is not None
    return True


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


_TYPE_HINTS = {
    "number": "write a number without units or thousands separators, e.g. 2.1 or 5000000",
    "integer": "write a whole number",
    "string": "write text (quote it in YAML if it looks like a number or date)",
    "object": "write a mapping of 'key: value' lines indented under this field",
    "array": "write a list",
    "date": "write an ISO date, YYYY-MM-DD",
    "boolean": "write true or false",
}


def _check_value(value: Any, desc: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
    kind = desc.get("type", "any")
    if not _type_ok(value, kind):
        problems.append(
            Problem(
                f"field '{path}': expected a {kind}, found {value!r} ({type(value).__name__})",
                hint=_TYPE_HINTS.get(kind, ""),
            )
        )
        return
    cons = desc.get("constraints", {})
    if "enum" in cons and value not in cons["enum"]:
        close = difflib.get_close_matches(str(value), [str(v) for v in cons["enum"]], n=1)
        problems.append(
            Problem(
                f"field '{path}': {value!r} is not allowed",
                hint=(f"did you mean '{close[0]}'? " if close else "") + f"use one of {cons['enum']}",
            )
        )
    if kind in {"number", "integer"}:
        if "minimum" in cons and value < cons["minimum"]:
            problems.append(
                Problem(f"field '{path}': {value} is below the minimum {cons['minimum']}", hint=_min_hint(path))
            )
        if "exclusiveMinimum" in cons and value <= cons["exclusiveMinimum"]:
            problems.append(
                Problem(
                    f"field '{path}': {value} must be greater than {cons['exclusiveMinimum']}", hint=_min_hint(path)
                )
            )
        if "maximum" in cons and value > cons["maximum"]:
            hint = f"use a value of at most {cons['maximum']}"
            if path.endswith("discount_rate") or path.endswith("share") or path.endswith("decay"):
                hint = (
                    f"write it as a fraction: {value / 100:g} for {value:g}% "
                    "(it looks like a percentage written by mistake)"
                )
            problems.append(Problem(f"field '{path}': {value} is above the maximum {cons['maximum']}", hint=hint))
    if kind == "object":
        if "fields" in desc:
            _check_fields(value, desc["fields"], path, problems)
        elif "values" in desc:
            for key, item in value.items():
                _check_value(item, desc["values"], f"{path}.{key}", problems)
    if kind == "array" and "items" in desc:
        for i, item in enumerate(value):
            _check_value(item, desc["items"], f"{path}[{i}]", problems)


def _min_hint(path: str) -> str:
    name = path.rsplit(".", 1)[-1]
    if name in {"price", "cap", "cohort_payment", "final_payment", "capital", "bonus_cap", "unit_value"}:
        return "money amounts are non-negative; a payment to the commissioner is not an outcome payment"
    if name == "horizon_years":
        return "the horizon is a positive number of years"
    return "check the sign and the unit"


def _check_fields(value: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], path: str, problems: list[Problem]):
    known = {f["name"]: f for f in fields}
    prefix = f"{path}." if path else ""
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            problems.append(
                Problem(
                    f"field '{prefix}{key}' is not part of the contract schema",
                    hint=(f"did you mean '{prefix}{close[0]}'? " if close else "")
                    + f"the fields here are {sorted(known)}",
                )
            )
    for name, desc in known.items():
        where = f"{prefix}{name}"
        if name not in value or value[name] is None:
            if desc.get("constraints", {}).get("required"):
                problems.append(Problem(f"field '{where}' is required but missing", hint=desc.get("description", "")))
            continue
        _check_value(value[name], desc, where, problems)


def _rule_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """The rules a field-by-field check cannot say (``x-evaluator-rules`` of the schema)."""
    problems: list[Problem] = []
    pay = raw.get("payment") or {}
    family = pay.get("family")
    thr = pay.get("thresholds") or {}

    def need(name: str, why: str) -> None:
        if pay.get(name) is None:
            problems.append(Problem(f"field 'payment.{name}' is required for {family}", hint=why))

    if family == "counterfactual_threshold":
        if thr.get("per_cohort") is None and thr.get("overall") is None:
            problems.append(
                Problem(
                    "field 'payment.thresholds.overall' (or 'payment.thresholds.per_cohort') is required "
                    "for counterfactual_threshold",
                    hint="state the improvement that triggers payment, e.g. overall: 0.075 for a 7.5% fall",
                )
            )
        if all(pay.get(k) is None for k in ("cohort_payment", "final_payment", "price")):
            problems.append(
                Problem(
                    "field 'payment.final_payment' (or cohort_payment or price) is required for "
                    "counterfactual_threshold",
                    hint="say what is paid when a threshold is met",
                )
            )
    elif family in {"fiscal_share", "savings_share"}:
        need("share", "the share of the gain that is paid, e.g. 0.5")
        if family == "savings_share":
            need("unit_value", "the money saved per contract unit of improvement per participant")
    elif family == "pre_post_target":
        if thr.get("overall") is None:
            problems.append(
                Problem(
                    "field 'payment.thresholds.overall' is required for pre_post_target",
                    hint="the target improvement against the baseline, e.g. 2.1 (fewer days per person per year)",
                )
            )
        if pay.get("final_payment") is None and pay.get("price") is None:
            problems.append(
                Problem("field 'payment.final_payment' (or price) is required for pre_post_target", hint="")
            )
    elif family == "rate_card":
        need("price", "the price paid per verified outcome")
    if pay.get("measure") == "relative" and family not in {None, "counterfactual_threshold"}:
        problems.append(
            Problem(
                "field 'payment.measure': 'relative' is only for counterfactual_threshold",
                hint="remove it or use 'absolute'",
            )
        )
    if thr.get("per_cohort") is not None and family not in {None, "counterfactual_threshold"}:
        problems.append(
            Problem(
                "field 'payment.thresholds.per_cohort' is only for counterfactual_threshold",
                hint="use payment.thresholds.overall",
            )
        )
    part = raw.get("participants") or {}
    total, by = part.get("total"), part.get("by_cohort")
    if isinstance(total, (int, float)) and isinstance(by, Mapping):
        values = [v for v in by.values() if isinstance(v, (int, float))]
        if len(values) == len(by) and not math.isclose(sum(values), total, rel_tol=1e-9):
            problems.append(
                Problem(
                    f"field 'participants.total' ({total:g}) differs from the sum of participants.by_cohort "
                    f"({sum(values):g})",
                    hint="make them agree or give only one of them",
                )
            )
    return problems


def validate_contract(raw: Mapping[str, Any], *, source: str | None = None) -> None:
    """Check a contract mapping against ``data_schemas/contract.schema.json``.

    Every problem is collected into one :class:`~evaluator.errors.ContractError`;
    each names the field by its path (``payment.thresholds.overall``) and says what
    to do.

    Examples
    --------
    >>> validate_contract({"name": "x", "outcome": {"metric": "y", "unit": "days", "direction": "down"},
    ...                    "payment": {"family": "rate_card", "price": -5}})
    Traceback (most recent call last):
    ...
    evaluator.errors.ContractError: 2 problems found:
    1. field 'outcome.direction': 'down' is not allowed
        fix: use one of ['decrease', 'increase']
    2. field 'payment.price': -5 is below the minimum 0
        fix: money amounts are non-negative; a payment to the commissioner is not an outcome payment
    """
    if not isinstance(raw, Mapping):
        _raise([Problem(f"a contract is a mapping of fields, found {type(raw).__name__}")], source)
    problems: list[Problem] = []
    _check_fields(raw, _schema()["fields"], "", problems)
    problems += _rule_problems(raw)
    if problems:
        _raise(problems, source)


def _raise(problems: Sequence[Problem], source: str | None = None) -> None:
    n = len(problems)
    where = f" in {source}" if source else ""
    head = f"{n} problem{'s' if n != 1 else ''} found{where}:"
    body = "\n".join(f"{i}. {p}" for i, p in enumerate(problems, 1))
    err = ContractError(f"{head}\n{body}")
    # Same shape as DataError, so callers can list the problems.
    err.problems = tuple(problems)  # type: ignore[attr-defined]
    err.source = source  # type: ignore[attr-defined]
    raise err


def read_contract(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON contract file into a mapping, unvalidated."""
    path = Path(path)
    if not path.is_file():
        _raise([Problem(f"contract file not found: {path}", hint="check the path and the working directory")])
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # any parse failure is a fault of the user's file
        _raise(
            [Problem(f"the file could not be parsed: {type(exc).__name__}: {exc}", hint="check its syntax")], str(path)
        )
    return raw


# -- the contract ---------------------------------------------------------------------
def _keyed(mapping: Mapping[Any, Any] | None, convert: Callable[[Any], Any] = float) -> dict[str, Any]:
    # Cohort keys are compared as text, so 1, "1" and 1.0 from YAML, JSON or a Result agree.
    return {_cohort_key(k): convert(v) for k, v in (mapping or {}).items()}


def _cohort_key(k: Any) -> str:
    if isinstance(k, (float, np.floating)) and float(k).is_integer():
        k = int(k)
    if isinstance(k, str) and k.startswith("g="):
        k = k[2:]
    return str(k)


@dataclass(frozen=True, repr=False)
class Contract:
    """The terms of an outcome contract; build it with :meth:`from_file` or :meth:`from_dict`.

    Attributes mirror ``data_schemas/contract.schema.json`` with defaults filled in.
    ``raw`` keeps the mapping as written.

    Examples
    --------
    >>> c = Contract.from_dict({
    ...     "name": "Peterborough-style", "outcome": {"metric": "reconvictions_12m",
    ...     "unit": "events per prisoner", "direction": "decrease"},
    ...     "payment": {"family": "counterfactual_threshold", "measure": "relative",
    ...                 "thresholds": {"per_cohort": 0.10, "overall": 0.075}, "final_payment": 1.0}})
    >>> c.family, c.thresholds
    ('counterfactual_threshold', {'per_cohort': 0.1, 'overall': 0.075})
    """

    name: str
    metric: str
    unit: str
    direction: Literal["decrease", "increase"]
    family: Family
    scale: float = 1.0
    contract_unit: str = ""
    measure: Literal["absolute", "relative"] = "absolute"
    thresholds: Mapping[str, float | None] = field(default_factory=dict)
    comparison: Mapping[str, Any] = field(default_factory=dict)
    baseline: Mapping[str, Any] = field(default_factory=dict)
    cohort_payment: float = 0.0
    final_payment: float = 0.0
    price: float = 0.0
    share: float | None = None
    unit_value: float = 1.0
    decay: float = 0.0
    bonus_cap: float | None = None
    cap: float | None = None
    early_dates: Mapping[str, dt.date] = field(default_factory=dict)
    final_date: dt.date | None = None
    participants: float = 1.0
    participants_by_cohort: Mapping[str, float] = field(default_factory=dict)
    capital: float | None = None
    invested: dt.date | None = None
    investor_share: float = 1.0
    horizon_years: float | None = None
    discount_rate: float = 0.035
    currency: str = ""
    description: str = ""
    source: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    # -- building -----------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Contract:
        """Read and validate a YAML or JSON contract file (``yaml.safe_load``; no code runs).

        Examples
        --------
        >>> from pathlib import Path
        >>> import evaluator.contracts as ec
        >>> folder = Path(ec.__file__).resolve().parents[1] / "notebooks" / "contracts"
        >>> Contract.from_file(folder / "sick_leave_pre_post.yaml").scale
        12.0
        """
        return cls.from_dict(read_contract(path), source=str(path))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str | None = None) -> Contract:
        """Validate a mapping (as read from YAML or JSON) and build the contract."""
        validate_contract(raw, source=source)
        out, pay = raw["outcome"], raw["payment"]
        thr = pay.get("thresholds") or {}
        comp = pay.get("comparison") or {}
        dates = pay.get("dates") or {}
        part = raw.get("participants") or {}
        inv = raw.get("investor") or {}
        by_cohort = _keyed(part.get("by_cohort"))
        total = part.get("total")
        total = float(total) if total is not None else (float(sum(by_cohort.values())) if by_cohort else 1.0)
        scale = float(out.get("scale", 1.0))
        return cls(
            name=str(raw["name"]),
            metric=str(out["metric"]),
            unit=str(out["unit"]),
            direction=out["direction"],
            family=pay["family"],
            scale=scale,
            contract_unit=str(
                out.get("contract_unit") or (out["unit"] if scale == 1 else f"{out['unit']} x {scale:g}")
            ),
            measure=pay.get("measure", "absolute"),
            thresholds={
                "per_cohort": None if thr.get("per_cohort") is None else float(thr["per_cohort"]),
                "overall": None if thr.get("overall") is None else float(thr["overall"]),
            },
            comparison={
                "overall": None if comp.get("overall") is None else float(comp["overall"]),
                "by_cohort": _keyed(comp.get("by_cohort")),
            },
            baseline=dict(pay.get("baseline") or {}),
            cohort_payment=float(pay.get("cohort_payment") or 0.0),
            final_payment=float(pay.get("final_payment") or 0.0),
            price=float(pay.get("price") or 0.0),
            share=None if pay.get("share") is None else float(pay["share"]),
            unit_value=float(pay.get("unit_value", 1.0)),
            decay=float(pay.get("decay") or 0.0),
            bonus_cap=None if pay.get("bonus_cap") is None else float(pay["bonus_cap"]),
            cap=None if pay.get("cap") is None else float(pay["cap"]),
            early_dates=_keyed(dates.get("early"), _as_date),
            final_date=_as_date(dates.get("final")),
            participants=total,
            participants_by_cohort=by_cohort,
            capital=None if inv.get("capital") is None else float(inv["capital"]),
            invested=_as_date(inv.get("invested")),
            investor_share=float(inv.get("share", 1.0)),
            horizon_years=None if raw.get("horizon_years") is None else float(raw["horizon_years"]),
            discount_rate=float(raw.get("discount_rate", 0.035)),
            currency=str(raw.get("currency", "")),
            description=str(raw.get("description", "")),
            source=source,
            raw=json.loads(json.dumps(raw, default=str)),
        )

    def replace(self, **changes: Any) -> Contract:
        """A copy with some terms changed (used by :func:`settlement_sensitivity`), checked again.

        Examples
        --------
        >>> c = Contract.from_dict({"name": "x", "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
        ...                         "payment": {"family": "rate_card", "price": 10}})
        >>> c.replace(price=20).price
        20.0
        """
        for key in ("price", "cap", "cohort_payment", "final_payment", "horizon_years", "capital"):
            if key in changes and changes[key] is not None and float(changes[key]) < 0:
                _raise([Problem(f"field '{key}': {changes[key]} is negative", hint=_min_hint(key))])
        if "discount_rate" in changes:
            _check_rate(changes["discount_rate"])
        floats = {
            k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in changes.items()
        }
        return dataclasses.replace(self, **floats)

    # -- reading ------------------------------------------------------------------
    @property
    def sign(self) -> float:
        """+1 when an increase is success, -1 when a decrease is."""
        return 1.0 if self.direction == "increase" else -1.0

    @property
    def is_counterfactual(self) -> bool:
        """Whether the contract's own rule pays on a comparison with a counterfactual."""
        return self.family in {"counterfactual_threshold", "fiscal_share", "savings_share"}

    def to_dict(self) -> dict[str, Any]:
        """The contract as written (JSON-safe)."""
        return _jsonable(dict(self.raw))

    def describe(self) -> str:
        """One sentence stating the rule in words."""
        thr = self.thresholds
        what = "fall" if self.direction == "decrease" else "rise"
        cu = self.contract_unit or self.unit

        def amount(x: float) -> str:
            return f"{self.currency + ' ' if self.currency else ''}{x:,.0f}"

        def level(t: float) -> str:
            return f"{t:.1%}" if self.measure == "relative" else f"{t:g} {cu}"

        if self.family == "counterfactual_threshold":
            parts = []
            if thr.get("per_cohort") is not None:
                parts.append(f"a cohort is paid early if its {what} is at least {level(thr['per_cohort'])}")
            if thr.get("overall") is not None:
                parts.append(
                    f"the final payment is due if all cohorts together show a {what} of at least "
                    f"{level(thr['overall'])}"
                )
            return "; ".join(parts) + "."
        if self.family == "fiscal_share":
            return f"the investor receives {self.share:.0%} of the measured net fiscal gain against the control group."
        if self.family == "pre_post_target":
            pay = amount(self.final_payment) if self.final_payment else f"{amount(self.price)} per {cu}"
            return (
                f"{pay} is paid if {self.metric} shows a {what} of at least {thr['overall']:g} {cu} "
                "against the baseline period."
            )
        if self.family == "rate_card":
            return f"{amount(self.price)} is paid per verified outcome ({cu})."
        bonus = f", with the bonus capped at {self.bonus_cap:.0%} of the capital" if self.bonus_cap is not None else ""
        return f"the investor is repaid {self.share:.0%} of the savings{bonus}."

    def __repr__(self) -> str:
        return f"<Contract {self.name!r}: {FAMILY_LABELS[self.family]}, metric {self.metric} ({self.direction})>"


def _check_rate(rate: float, name: str = "discount_rate") -> float:
    rate = float(rate)
    if not math.isfinite(rate) or rate < 0:
        _raise([Problem(f"{name}={rate!r} must be a non-negative fraction", hint="e.g. 0.035 for 3.5%")])
    if rate > MAX_RATE:
        _raise(
            [
                Problem(
                    f"{name}={rate:g} is above {MAX_RATE:g}",
                    hint=f"write the rate as a fraction: {rate / 100:g} for {rate:g}% (it looks like a percentage)",
                )
            ]
        )
    return rate


# -- estimates ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Effect:
    """An effect in the metric's measured unit, with what is known of its uncertainty."""

    estimate: float
    se: float
    ci: tuple[float, float]
    alpha: float
    outcome: str | None
    draws: np.ndarray | None
    comparison: float | None = None


def _effect(x: Any, *, se: float | None, alpha: float, draws: Any, label: str) -> _Effect:
    outcome = None
    info: Mapping[str, Any] = {}
    if isinstance(x, Result):
        est, se_, ci, alpha, outcome, info = x.estimate, x.se, x.ci, x.alpha, x.outcome, x.info
    else:
        if isinstance(x, Mapping):
            x, se = x.get("estimate"), x.get("se", se)
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            x, se = x
        try:
            est = float(x)
        except (TypeError, ValueError):
            _raise(
                [
                    Problem(
                        f"{label}: cannot read an estimate from {type(x).__name__}",
                        hint="pass an evaluator Result, a number (with se=), or a pair (estimate, se)",
                    )
                ]
            )
        se_ = math.nan if se is None else float(se)
        z = stats.norm.ppf(1 - alpha / 2)
        ci = (est - z * se_, est + z * se_)
    if draws is None:
        draws = next((info[k] for k in DRAW_KEYS if info.get(k) is not None), None)
    arr = None if draws is None else np.asarray(draws, dtype=float).ravel()
    if arr is not None:
        arr = arr[np.isfinite(arr)]
        if arr.size < 2:
            arr = None
    comparison = next((float(info[k]) for k in COMPARISON_KEYS if info.get(k) is not None), None)
    return _Effect(float(est), float(se_), (float(ci[0]), float(ci[1])), float(alpha), outcome, arr, comparison)


def _cohorts_from_result(r: Result) -> dict[str, Result] | None:
    """Per-cohort rows of a result whose table has a ``cohort`` column (``aggregate("group")``)."""
    t = r.table
    if "cohort" not in t.columns:
        return None
    rows = t[t["cohort"].notna()]
    if rows.empty:
        return None
    out = {}
    for _, row in rows.iterrows():
        one = t.loc[[row.name]].copy()
        out[_cohort_key(row["cohort"])] = Result(
            r.estimator, one, nobs=r.nobs, alpha=r.alpha, inference=r.inference, outcome=r.outcome
        )
    return out


# -- the rules ------------------------------------------------------------------------
def _improvement(c: Contract, effect: np.ndarray, comparison: float | None) -> np.ndarray:
    """Improvement in the contract's terms: positive in the direction of success.

    Absolute: per participant in the contract's unit (effect x scale). Relative: as a
    fraction of the comparison level (the scale cancels).
    """
    effect = np.asarray(effect, dtype=float)
    if c.measure == "relative":
        return c.sign * effect / comparison
    return c.sign * effect * c.scale


def _slope(c: Contract, comparison: float | None) -> float:
    return float(_improvement(c, np.array([1.0]), comparison)[0])


def _p_met(c: Contract, eff: _Effect, threshold: float, comparison: float | None) -> tuple[float, str]:
    """P(improvement >= threshold) from the bootstrap draws where there are any, else the normal approximation."""
    if eff.draws is not None:
        imp = _improvement(c, eff.draws, comparison)
        return float(np.mean(imp >= threshold)), f"bootstrap ({eff.draws.size} draws)"
    if not (math.isfinite(eff.se) and eff.se > 0):
        return math.nan, "not available (no standard error)"
    k = _slope(c, comparison)
    cut = threshold / k  # the effect at which the improvement equals the threshold
    z = (eff.estimate - cut) / eff.se if k > 0 else (cut - eff.estimate) / eff.se
    return float(stats.norm.cdf(z)), "normal approximation"


def _quantity(c: Contract, effect: np.ndarray, n: float) -> np.ndarray:
    """Contract units of improvement summed over ``n`` participants (outcomes to price)."""
    return c.sign * np.asarray(effect, dtype=float) * c.scale * n


def _years_factor(c: Contract, horizon: float | None = None, decay: float | None = None) -> float:
    h = c.horizon_years if horizon is None else horizon
    d = c.decay if decay is None else decay
    if h is None:
        return 1.0
    whole, part = int(h), h - int(h)
    t = np.arange(whole + (1 if part > 0 else 0))
    w = np.ones(t.size)
    if part > 0:
        w[-1] = part
    return float(np.sum(w * (1 - d) ** t))


def _rows(
    c: Contract, overall: _Effect, cohorts: dict[str, _Effect], comp: dict[str, float | None]
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One row per rule, and the dated payments at the three points (estimate, ci_low, ci_high).

    Returns rows (rule, cohort, improvement, threshold, met, p_met, method, payments)
    and a matrix of payments (rules x 3). The effect's three points are evaluated
    together: every cohort at its own lower end, then every cohort at its upper end.
    """
    rows: list[dict[str, Any]] = []

    def points(e: _Effect) -> np.ndarray:
        return np.array([e.estimate, e.ci[0], e.ci[1]])

    fam, thr = c.family, c.thresholds
    if fam == "counterfactual_threshold":
        early_paid = np.zeros(3)
        t_c = thr.get("per_cohort")
        if t_c is not None:
            for key, e in cohorts.items():
                n = c.participants_by_cohort.get(key, c.participants / max(len(cohorts), 1))
                imp = _improvement(c, points(e), comp.get(key))
                met = imp >= t_c
                pay = np.where(met, c.cohort_payment + c.price * np.maximum(_quantity(c, points(e), n), 0), 0.0)
                p, how = _p_met(c, e, t_c, comp.get(key))
                early_paid = early_paid + pay
                rows.append(_row(f"cohort {key}", key, imp, t_c, met, p, how, pay, c.early_dates.get(key)))
        t_o = thr.get("overall")
        if t_o is not None:
            imp = _improvement(c, points(overall), comp.get(None))
            met = imp >= t_o
            full = c.final_payment + c.price * np.maximum(_quantity(c, points(overall), c.participants), 0)
            # Early payments are advances on the final one: it pays only what they have not.
            pay = np.where(met, np.maximum(full - early_paid, 0.0), 0.0)
            p, how = _p_met(c, overall, t_o, comp.get(None))
            rows.append(_row("overall (final)", None, imp, t_o, met, p, how, pay, c.final_date))
    elif fam == "fiscal_share":
        gain = _quantity(c, points(overall), c.participants) * c.unit_value
        t_o = thr.get("overall") or 0.0
        imp = _improvement(c, points(overall), None)
        met = imp >= t_o if thr.get("overall") is not None else gain > 0
        pay = np.where(met, c.share * np.maximum(gain, 0.0), 0.0)
        p, how = _p_met(c, overall, t_o, None)
        rows.append(_row("share of net fiscal gain", None, imp, thr.get("overall"), met, p, how, pay, c.final_date))
    elif fam == "pre_post_target":
        rows.append(_target_row(c, points(overall), overall, "target vs counterfactual"))
    elif fam == "rate_card":
        quantity = np.maximum(_quantity(c, points(overall), c.participants), 0.0)
        pay = c.price * quantity
        imp = _improvement(c, points(overall), None)
        p, how = _p_met(c, overall, 0.0, None)
        rows.append(_row("attributable outcomes x price", None, imp, None, imp > 0, p, how, pay, c.final_date))
    else:  # savings_share
        savings = _quantity(c, points(overall), c.participants) * c.unit_value * _years_factor(c)
        pay = c.share * np.maximum(savings, 0.0)
        if c.bonus_cap is not None and c.capital is not None:
            pay = np.minimum(pay, c.capital * (1 + c.bonus_cap))
        imp = _improvement(c, points(overall), None)
        p, how = _p_met(c, overall, 0.0, None)
        rows.append(_row("share of savings", None, imp, None, imp > 0, p, how, pay, c.final_date))
    payments = np.array([r["_pay"] for r in rows]) if rows else np.zeros((0, 3))
    if c.cap is not None and len(rows):
        # The cap binds on the running total in payment order: later payments are cut first.
        cum = np.cumsum(payments, axis=0)
        capped = np.minimum(cum, c.cap)
        payments = np.diff(np.vstack([np.zeros(3), capped]), axis=0)
    return rows, payments


def _target_row(c: Contract, effect_points: np.ndarray, eff: _Effect | None, label: str) -> dict[str, Any]:
    target = c.thresholds["overall"]
    imp = _improvement(c, effect_points, None)
    met = imp >= target
    pay = np.where(met, c.final_payment + c.price * np.maximum(_quantity(c, effect_points, c.participants), 0), 0.0)
    p, how = _p_met(c, eff, target, None) if eff is not None else (math.nan, "observed (no uncertainty)")
    return _row(label, None, imp, target, met, p, how, pay, c.final_date)


def _row(rule, cohort, imp, threshold, met, p, how, pay, date) -> dict[str, Any]:
    imp, met, pay = np.atleast_1d(imp), np.atleast_1d(met), np.atleast_1d(pay).astype(float)
    if imp.size == 1:
        imp, met, pay = np.repeat(imp, 3), np.repeat(met, 3), np.repeat(pay, 3)
    return {
        "rule": rule,
        "cohort": cohort,
        "improvement": float(imp[0]),
        "improvement_ci_low": float(imp[1]),
        "improvement_ci_high": float(imp[2]),
        "threshold": math.nan if threshold is None else float(threshold),
        "met": bool(met[0]),
        "p_met": p,
        "probability_method": how,
        "date": date,
        "_pay": pay,
    }


# -- investor ---------------------------------------------------------------------------
def irr(amounts: Sequence[float] | np.ndarray, times: Sequence[Any] | np.ndarray) -> float | None:
    """Internal rate of return of dated cash flows, or ``None`` where it is undefined.

    ``times`` are years from the first flow or dates (actual days / 365, as Excel's
    XIRR). The rate solves ``sum(amount / (1 + r) ** t) = 0`` by Brent's method on
    (-0.9999, 1e6). It is undefined (``None``) unless the flows change sign.

    Examples
    --------
    >>> round(irr([-100, 110], [0, 1]), 12)
    0.1
    >>> import datetime as dt
    >>> round(irr([-100, 121], [dt.date(2021, 1, 1), dt.date(2023, 1, 1)]), 10)
    0.1
    >>> irr([-100, 0], [0, 1]) is None
    True
    """
    a = np.asarray(amounts, dtype=float)
    t = _year_fractions(times)
    if a.size < 2 or not (np.any(a > 0) and np.any(a < 0)):
        return None

    def npv(r: float) -> float:
        return float(np.sum(a / (1.0 + r) ** t))

    lo, hi = -0.9999, 1e6
    f_lo, f_hi = npv(lo), npv(hi)
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo * f_hi > 0:
        return None
    return float(optimize.brentq(npv, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))


def _year_fractions(times: Sequence[Any] | np.ndarray) -> np.ndarray:
    items = list(times)
    if items and all(_as_date(x) is not None and not isinstance(x, (int, float)) for x in items):
        dates = [_as_date(x) for x in items]
        first = min(dates)
        return np.array([(d - first).days / DAYS_PER_YEAR for d in dates], dtype=float)
    return np.asarray(items, dtype=float)


def _investor_table(c: Contract, schedule: pd.DataFrame) -> tuple[pd.DataFrame | None, list[str]]:
    notes: list[str] = []
    if c.capital is None:
        return None, notes
    rows = []
    dated = c.invested is not None and schedule["date"].notna().all() and len(schedule) > 0
    if not dated:
        notes.append("the internal rate of return needs investor.invested and every payment date; it is not computed")
    for scen in ("estimate", "ci_low", "ci_high"):
        received = schedule[scen].to_numpy() * c.investor_share
        total = float(received.sum())
        rate, why = None, ""
        if dated:
            rate = irr(np.r_[-c.capital, received], [c.invested, *schedule["date"].tolist()])
            if rate is None:
                why = "undefined: the investor receives nothing back" if total <= 0 else "undefined"
        else:
            why = "no dates"
        rows.append(
            {
                "scenario": scen,
                "capital": c.capital,
                "received": total,
                "multiple": total / c.capital,
                "irr": math.nan if rate is None else rate,
                "irr_note": why,
            }
        )
    return pd.DataFrame(rows), notes


# -- the settlement ------------------------------------------------------------------------
SCENARIOS = ("estimate", "ci_low", "ci_high")


@dataclass(frozen=True, repr=False)
class Settlement:
    """What a contract pays on an estimated effect. Built by :func:`settle`; immutable.

    Attributes
    ----------
    contract : Contract
    rules : pandas.DataFrame
        One row per rule (each cohort, the final payment, or the single rule):
        improvement in the contract's terms at the estimate and at the ends of the
        interval, threshold, whether it is met at the estimate, the probability it
        was met and how that was computed, and the payment at the three points.
    payments : dict
        Total payment at ``estimate``, ``ci_low`` and ``ci_high`` (the ends of the
        effect's interval, not the order of the payments).
    present_value : dict
        The same, discounted to the investment date (or the first payment) at the
        contract's discount rate.
    own_rule : dict or None
        What the contract's own, non-counterfactual rule pays on the observed
        figures (pre/post target or rate card), with the observed improvement.
    investor : pandas.DataFrame or None
        Capital, received, multiple and internal rate of return per scenario.
    probability_method : str
        ``"bootstrap (B draws)"``, ``"normal approximation"`` or ``"not available"``.
    sentence : str
        The settlement in one plain-language sentence.
    notes : tuple of str
    """

    contract: Contract
    rules: pd.DataFrame
    payments: Mapping[str, float]
    present_value: Mapping[str, float]
    own_rule: Mapping[str, Any] | None
    investor: pd.DataFrame | None
    probability_method: str
    alpha: float
    effect: Mapping[str, float]
    sentence: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", self.rules.copy())
        if self.investor is not None:
            object.__setattr__(self, "investor", self.investor.copy())

    @property
    def due(self) -> float:
        """Total payment due at the point estimate."""
        return float(self.payments["estimate"])

    def to_frame(self, which: Literal["rules", "investor", "comparison"] = "rules") -> pd.DataFrame:
        """Tidy tables: ``"rules"`` (one row per rule), ``"investor"``, or ``"comparison"``.

        ``"comparison"`` has one row per basis of payment (counterfactual estimate and
        its interval ends, and the contract's own rule where it differs).
        """
        if which == "rules":
            return self.rules.copy()
        if which == "investor":
            return pd.DataFrame() if self.investor is None else self.investor.copy()
        if which == "comparison":
            rows = [
                {"basis": f"counterfactual ({s.replace('_', ' ')})", "improvement": self._imp(s), "payment": v}
                for s, v in self.payments.items()
            ]
            if self.own_rule is not None:
                rows.append(
                    {
                        "basis": f"contract's own rule ({self.own_rule['rule']})",
                        "improvement": self.own_rule["improvement"],
                        "payment": self.own_rule["payment"],
                    }
                )
            return pd.DataFrame(rows)
        raise ValueError(f"which={which!r}: use 'rules', 'investor' or 'comparison'")

    def _imp(self, scenario: str) -> float:
        col = {"estimate": "improvement", "ci_low": "improvement_ci_low", "ci_high": "improvement_ci_high"}[scenario]
        last = self.rules[col]
        return float(last.iloc[-1]) if len(last) else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (for the results.json sidecar of a report)."""
        return _jsonable(
            {
                "contract": self.contract.name,
                "family": self.contract.family,
                "metric": self.contract.metric,
                "direction": self.contract.direction,
                "currency": self.contract.currency,
                "effect": dict(self.effect),
                "alpha": self.alpha,
                "payments": dict(self.payments),
                "present_value": dict(self.present_value),
                "probability_method": self.probability_method,
                "own_rule": None if self.own_rule is None else dict(self.own_rule),
                "rules": self.rules.assign(date=self.rules["date"].astype(str)),
                "investor": self.investor,
                "sentence": self.sentence,
                "notes": list(self.notes),
            }
        )

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    def _money(self, x: float) -> str:
        cur = f"{self.contract.currency} " if self.contract.currency else ""
        return f"{cur}{x:,.0f}" if abs(x) >= 100 else f"{cur}{x:,.2f}"

    def _lines(self) -> list[tuple[str, str]]:
        c = self.contract
        level = round(100 * (1 - self.alpha))
        e = self.effect
        out = [
            ("Contract", c.name),
            ("Rule", FAMILY_LABELS[c.family] + ": " + c.describe()),
            (
                "Effect",
                f"{_fmt(e['estimate'])} {c.unit}, {level}% CI [{_fmt(e['ci_low'])}, {_fmt(e['ci_high'])}]",
            ),
            (
                "Payment due",
                f"{self._money(self.payments['estimate'])} at the estimate; {self._money(self.payments['ci_low'])} "
                f"and {self._money(self.payments['ci_high'])} at the ends of the interval",
            ),
            ("Present value", f"{self._money(self.present_value['estimate'])} at {c.discount_rate:.1%}"),
            ("Probability method", self.probability_method),
        ]
        if self.own_rule is not None:
            out.append(
                (
                    "Contract's own rule",
                    f"{self.own_rule['rule']}: improvement {_fmt(self.own_rule['improvement'])}, "
                    f"pays {self._money(self.own_rule['payment'])}",
                )
            )
        if self.investor is not None:
            row = self.investor.iloc[0]
            irr_txt = f"{row['irr']:.1%}" if math.isfinite(row["irr"]) else f"- ({row['irr_note']})"
            out.append(("Investor", f"multiple {row['multiple']:.2f}, IRR {irr_txt}"))
        return out

    def _shown_rules(self) -> pd.DataFrame:
        cols = ["rule", "improvement", "threshold", "met", "p_met", "payment", "payment_ci_low", "payment_ci_high"]
        return self.rules[[c for c in cols if c in self.rules.columns] + ["date"]]

    def summary(self) -> str:
        """Plain-text summary: rule, effect, payments, probabilities, investor, sentence."""
        title = f"Settlement: {self.contract.name}"
        head = [title, "=" * len(title)] + [f"{k}: {v}" for k, v in self._lines()]
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            body = self._shown_rules().to_string(index=False, formatters=_formatters(self._shown_rules()))
            inv = ""
            if self.investor is not None:
                inv = "\n\n" + self.investor.to_string(index=False, formatters=_formatters(self.investor))
        notes = "".join(f"\nNote: {n}" for n in self.notes)
        return "\n".join(head) + "\n\n" + body + inv + "\n\n" + self.sentence + ("\n" + notes if notes else "")

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<Settlement {self.contract.name!r}: due {self._money(self.due)} at the estimate>"

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in self._lines())
        shown = self._shown_rules()
        table = shown.to_html(index=False, formatters=_formatters(shown), escape=True, border=0)
        inv = ""
        if self.investor is not None:
            inv = self.investor.to_html(index=False, formatters=_formatters(self.investor), escape=True, border=0)
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return (
            "<div class='evaluator-settlement'>"
            f"<h4>Settlement: {esc(self.contract.name)}</h4>"
            f"<p>{esc(self.sentence)}</p><table>{rows}</table>{table}{inv}"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of the payment at the estimate, at the interval's ends and under the own rule."""
        import matplotlib.pyplot as plt

        frame = self.to_frame("comparison")
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(frame) + 1.2))
        else:
            fig = ax.figure
        colours = ["#1f77b4", "#9ecae1", "#9ecae1", "#d62728"][: len(frame)]
        ax.barh(frame["basis"], frame["payment"], color=colours)
        ax.invert_yaxis()
        ax.set_xlabel(f"payment ({self.contract.currency})" if self.contract.currency else "payment")
        ax.set_title(self.contract.name, fontsize=10)
        fig.tight_layout()
        return fig


_MONEY = {"payment", "payment_ci_low", "payment_ci_high", "capital", "received"}
_SHARES = {"p_met", "irr"}


def _formatters(frame: pd.DataFrame) -> dict[str, Callable[[Any], str]]:
    """Money with thousands separators, probabilities and rates as percentages, the rest as results do."""

    def money(v: Any) -> str:
        return f"{v:,.0f}" if isinstance(v, (int, float)) and math.isfinite(v) else "."

    def share(v: Any) -> str:
        return f"{v:.1%}" if isinstance(v, (int, float)) and math.isfinite(v) else "."

    out: dict[str, Callable[[Any], str]] = {}
    for col in frame.columns:
        if col in _MONEY:
            out[col] = money
        elif col in _SHARES:
            out[col] = share
        elif pd.api.types.is_float_dtype(frame[col]):
            out[col] = _fmt
    return out


def _sentence(c: Contract, s: dict[str, Any]) -> str:
    e, pay, level = s["effect"], s["payments"], round(100 * (1 - s["alpha"]))

    def m(x: float) -> str:
        cur = f"{c.currency} " if c.currency else ""
        return f"{cur}{x:,.0f}" if abs(x) >= 100 else f"{cur}{x:,.2f}"

    rules = s["rules"]
    parts = [
        f"The estimated effect on {c.metric} is {_fmt(e['estimate'])} {c.unit} "
        f"({level}% CI {_fmt(e['ci_low'])} to {_fmt(e['ci_high'])})."
    ]
    for r in rules:
        if math.isnan(r["threshold"]):
            continue
        shown = (
            f"{r['improvement']:.1%} against {r['threshold']:.1%}"
            if c.measure == "relative"
            else f"{_fmt(r['improvement'])} against {_fmt(r['threshold'])} {c.contract_unit}"
        )
        p = (
            f"; probability it was met {r['p_met']:.0%} ({r['probability_method']})"
            if math.isfinite(r["p_met"])
            else ""
        )
        parts.append(f"{r['rule'].capitalize()}: {shown}, {'met' if r['met'] else 'not met'}{p}.")
    lo, hi = sorted([pay["ci_low"], pay["ci_high"]])
    rng = f" ({m(lo)} to {m(hi)} across the interval)" if not math.isclose(lo, hi) or lo != pay["estimate"] else ""
    due = f"{m(pay['estimate'])} is due" if pay["estimate"] > 0 else "no payment is due"
    parts.append(f"Under the contract's rule applied to the counterfactual estimate, {due}{rng}.")
    own = s["own_rule"]
    if own is not None:
        same = math.isclose(own["payment"], pay["estimate"])
        if c.family == "rate_card":
            what = f"{own['improvement']:,.0f} verified outcomes"
            why = "it also pays for outcomes that would have happened without the intervention"
        else:
            what = f"an observed improvement of {_fmt(own['improvement'])} {c.contract_unit}"
            why = "a before/after comparison cannot separate the intervention from the general trend"
        tail = "; the same." if same else f"; {why}."
        parts.append(f"The contract's own {own['rule']} rule, on {what}, pays {m(own['payment'])}{tail}")
    return " ".join(parts)


# -- settle -------------------------------------------------------------------------------
def settle(
    contract: Contract | str | Path | Mapping[str, Any],
    estimate: Result | float | tuple[float, float] | Mapping[str, Any],
    *,
    se: float | None = None,
    cohorts: Mapping[Any, Any] | None = None,
    observed: float | Mapping[str, float] | None = None,
    comparison: float | Mapping[Any, float] | None = None,
    draws: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    overall_only: bool = False,
) -> Settlement:
    """Apply an outcome contract's payment rule to an estimated effect.

    Parameters
    ----------
    contract : Contract, path or mapping
        The terms; a path or mapping is read with :meth:`Contract.from_file` / ``from_dict``.
    estimate : Result, number, (estimate, se) or mapping
        The effect over all participants, in the metric's measured unit (treated minus
        counterfactual). A :class:`~evaluator.results.Result` must be of the contract's
        metric. A number needs ``se=`` for probabilities and an interval.
    se : float, optional
        Standard error of a numeric ``estimate``.
    cohorts : mapping, optional
        cohort -> effect (Result, number or (estimate, se)) for per-cohort rules. When
        omitted and ``estimate`` is a result with a ``cohort`` column (as
        ``StaggeredResult.aggregate("group")``), its cohort rows are used.
    observed : number or mapping, optional
        For a non-counterfactual own rule, the figure that rule is applied to, in the
        measured unit: ``pre_post_target``: the observed change after minus before
        (or ``{"before": b, "after": a}``; ``before`` defaults to ``payment.baseline.value``);
        ``rate_card``: the observed outcome per participant (e.g. the share employed).
    comparison : number or mapping, optional
        Comparison group's level of the outcome (measured unit) for ``measure: relative``;
        a mapping may hold cohorts and ``"overall"``. Defaults to ``payment.comparison``
        of the contract, then to ``info["comparison_mean"]`` of a result. A cohort
        without a level of its own is compared with the overall level.
    draws : array, optional
        Bootstrap draws of the overall estimate. Otherwise draws in ``Result.info``
        (keys :data:`DRAW_KEYS`, e.g. a matched bootstrap's ``boot_estimates``) are
        used; without draws the probabilities use the normal approximation.
    alpha : float
        1 - confidence level for numeric estimates (a Result keeps its own).
    overall_only : bool
        Settle only the overall rule of a contract with per-cohort thresholds.

    Returns
    -------
    Settlement

    Notes
    -----
    Improvement is signed so that positive is success: ``sign x effect x scale`` per
    participant (absolute) or ``sign x effect / comparison`` (relative, Peterborough's
    "fall against the comparison"). A threshold is met when the improvement reaches it.
    The probability that it was met is ``P(improvement >= threshold)``: the share of
    bootstrap draws that reach it, or under the normal approximation
    ``Phi((sign x (estimate - cut)) / se)`` with ``cut`` the effect at which the
    improvement equals the threshold. Payments at the interval ends evaluate every
    cohort at the same end. Early payments are advances on the final payment.

    Examples
    --------
    Peterborough cohort 1: 142 reconviction events per 100 against 155 in the comparison.

    >>> c = Contract.from_dict({"name": "Peterborough-style", "currency": "GBP",
    ...     "outcome": {"metric": "reconvictions_12m", "unit": "events per prisoner", "direction": "decrease"},
    ...     "payment": {"family": "counterfactual_threshold", "measure": "relative",
    ...                 "thresholds": {"per_cohort": 0.10, "overall": 0.075},
    ...                 "cohort_payment": 1000, "final_payment": 5000}})
    >>> s = settle(c, -0.09 * 1.5, se=0.05, comparison={"overall": 1.5, 1: 1.55},
    ...            cohorts={1: (1.42 - 1.55, 0.07)})
    >>> s.rules[["rule", "met"]].values.tolist()
    [['cohort 1', False], ['overall (final)', True]]
    >>> s.due
    5000.0
    """
    c = contract if isinstance(contract, Contract) else _coerce_contract(contract)
    alpha = float(alpha)
    overall = _effect(estimate, se=se, alpha=alpha, draws=draws, label="estimate")
    problems: list[Problem] = []
    if overall.outcome is not None and overall.outcome != c.metric:
        problems.append(
            Problem(
                f"the estimate is of '{overall.outcome}' but the contract pays on '{c.metric}'",
                hint=f"estimate the effect on '{c.metric}' or use a contract on '{overall.outcome}'",
            )
        )
    cohort_in = cohorts
    if cohort_in is None and isinstance(estimate, Result):
        cohort_in = _cohorts_from_result(estimate)
    cohort_effects: dict[str, _Effect] = {}
    if c.thresholds.get("per_cohort") is not None and not overall_only:
        if not cohort_in:
            problems.append(
                Problem(
                    "the contract has a per-cohort rule (payment.thresholds.per_cohort) "
                    "but the estimate has no cohorts",
                    hint="pass cohorts={cohort: estimate} (e.g. one matched estimate per cohort), a result by cohort "
                    "(aggregate('group')), or settle(..., overall_only=True) for the final payment alone",
                )
            )
        else:
            for key, val in cohort_in.items():
                e = _effect(val, se=None, alpha=alpha, draws=None, label=f"cohort {key}")
                if e.outcome is not None and e.outcome != c.metric:
                    problems.append(
                        Problem(
                            f"the estimate for cohort {key} is of '{e.outcome}' but the contract pays on '{c.metric}'"
                        )
                    )
                cohort_effects[_cohort_key(key)] = e
    comp = _comparisons(c, comparison, overall, cohort_effects, problems)
    if problems:
        _raise(problems)
    rules, pay = _rows(c, overall, cohort_effects, comp)
    methods = sorted({r["probability_method"] for r in rules})
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_pay"} for r in rules])
    table["payment"], table["payment_ci_low"], table["payment_ci_high"] = pay[:, 0], pay[:, 1], pay[:, 2]
    totals = dict(zip(SCENARIOS, pay.sum(axis=0).tolist(), strict=True))
    pv = _present_value(c, table, pay)
    own = _own_rule(c, observed)
    schedule = table.rename(columns={"payment": "estimate", "payment_ci_low": "ci_low", "payment_ci_high": "ci_high"})
    investor, notes = _investor_table(c, schedule)
    if c.family in {"pre_post_target", "rate_card"} and observed is None:
        notes.append(
            "the contract's own rule is not counterfactual; pass observed= to show what it pays beside the estimate"
        )
    eff = {"estimate": overall.estimate, "ci_low": overall.ci[0], "ci_high": overall.ci[1], "se": overall.se}
    parts = {"effect": eff, "payments": totals, "alpha": overall.alpha, "rules": rules, "own_rule": own}
    return Settlement(
        contract=c,
        rules=table,
        payments=totals,
        present_value=pv,
        own_rule=own,
        investor=investor,
        probability_method="; ".join(methods),
        alpha=overall.alpha,
        effect=eff,
        sentence=_sentence(c, parts),
        notes=tuple(notes),
    )


def _coerce_contract(x: str | Path | Mapping[str, Any]) -> Contract:
    if isinstance(x, Mapping):
        return Contract.from_dict(x)
    return Contract.from_file(x)


def _comparisons(
    c: Contract, comparison: Any, overall: _Effect, cohorts: dict[str, _Effect], problems: list[Problem]
) -> dict[Any, float | None]:
    comp: dict[Any, float | None] = {None: c.comparison.get("overall")}
    comp.update(c.comparison.get("by_cohort", {}))
    if comparison is not None:
        if isinstance(comparison, Mapping):
            for k, v in comparison.items():
                comp[None if k in (None, "overall") else _cohort_key(k)] = float(v)
        else:
            comp[None] = float(comparison)
    if comp[None] is None and overall.comparison is not None:
        comp[None] = overall.comparison
    for k, e in cohorts.items():
        if comp.get(k) is None:
            # A cohort without its own comparison level is compared with the overall one.
            comp[k] = e.comparison if e.comparison is not None else comp[None]
    if c.measure == "relative":
        needed = [None] * (c.thresholds.get("overall") is not None) + list(cohorts)
        for k in needed:
            v = comp.get(k)
            if v is None or not v > 0:
                what = "overall" if k is None else f"cohort {k}"
                problems.append(
                    Problem(
                        f"a relative threshold needs the comparison group's level ({what}), which is missing"
                        if v is None
                        else f"the comparison level ({what}) must be positive, found {v}",
                        hint="give payment.comparison in the contract or settle(..., comparison={'overall': level, "
                        "cohort: level}) in the metric's measured unit",
                    )
                )
    return comp


def _present_value(c: Contract, table: pd.DataFrame, pay: np.ndarray) -> dict[str, float]:
    dates = table["date"].tolist() if len(table) else []
    start = c.invested or (min(d for d in dates if d is not None) if any(d is not None for d in dates) else None)
    if start is None or any(d is None for d in dates):
        return dict(zip(SCENARIOS, pay.sum(axis=0).tolist(), strict=True))
    t = np.array([(d - start).days / DAYS_PER_YEAR for d in dates])
    factor = (1 + c.discount_rate) ** -t
    return dict(zip(SCENARIOS, (factor @ pay).tolist(), strict=True))


def _own_rule(c: Contract, observed: Any) -> dict[str, Any] | None:
    if observed is None or c.family not in {"pre_post_target", "rate_card"}:
        return None
    if c.family == "pre_post_target":
        if isinstance(observed, Mapping):
            before = observed.get("before", c.baseline.get("value"))
            if before is None:
                _raise([Problem("observed= has no 'before' and the contract no payment.baseline.value")])
            change = float(observed["after"]) - float(before)
        else:
            change = float(observed)
        row = _target_row(c, np.array([change] * 3), None, "pre/post target")
        return {
            "rule": "pre/post",
            "observed": change,
            "improvement": row["improvement"],
            "threshold": row["threshold"],
            "met": row["met"],
            "payment": float(row["_pay"][0]),
        }
    level = float(observed)
    quantity = level * c.scale * c.participants
    pay = c.price * quantity
    if c.cap is not None:
        pay = min(pay, c.cap)
    return {
        "rule": "rate card",
        "observed": level,
        "improvement": quantity,
        "threshold": None,
        "met": None,
        "payment": pay,
    }


# -- sensitivity ----------------------------------------------------------------------------
def settlement_sensitivity(
    contract: Contract,
    estimate: Any,
    *,
    discount_rates: tuple[float, float] = (0.0, 0.07),
    horizons: tuple[float, float] | None = None,
    decays: tuple[float, float] = (0.0, 0.5),
    result: Literal["present_value", "payment"] = "present_value",
    **settle_kwargs: Any,
) -> pd.DataFrame:
    """Tornado table of the settlement over the effect's interval, discount rate, horizon and decay.

    Each parameter moves alone from its low to its high value, the others at their
    base (the contract's terms and the point estimate). The effect moves over its
    confidence interval. Parameters that do not enter the contract's rule have a
    swing of 0 and say so in ``note``.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, low, high, result_low, result_high, swing, note``
        sorted by swing; ``attrs["base"]`` holds the base result. Plot it with
        :func:`evaluator.economics.plot_tornado`.

    Examples
    --------
    >>> c = Contract.from_dict({"name": "x", "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
    ...     "payment": {"family": "savings_share", "share": 0.5, "unit_value": 100}, "horizon_years": 5})
    >>> t = settlement_sensitivity(c, 2.0, se=0.5)
    >>> sorted(t["parameter"])
    ['decay', 'discount_rate', 'effect', 'horizon_years']
    """
    from evaluator.economics import tornado_table

    base_s = settle(contract, estimate, **settle_kwargs)
    lo, hi = base_s.effect["ci_low"], base_s.effect["ci_high"]
    h = contract.horizon_years or 1.0
    horizons = horizons or (max(h / 2, 1.0), h * 2)

    def value(s: Settlement) -> float:
        return float((s.present_value if result == "present_value" else s.payments)["estimate"])

    def run(**p: Any) -> float:
        c = contract.replace(
            discount_rate=p.get("discount_rate", contract.discount_rate),
            horizon_years=p.get("horizon_years", contract.horizon_years),
            decay=p.get("decay", contract.decay),
        )
        if "effect" in p:
            kw = {k: v for k, v in settle_kwargs.items() if k not in {"se", "draws", "cohorts"}}
            shift = p["effect"] - base_s.effect["estimate"]
            coh = settle_kwargs.get("cohorts")
            if coh:
                # Cohorts move with the overall effect, by the same amount.
                coh = {
                    k: _effect(v, se=None, alpha=0.05, draws=None, label="").estimate + shift for k, v in coh.items()
                }
            return value(settle(c, p["effect"], cohorts=coh, **kw))
        return value(settle(c, estimate, **settle_kwargs))

    ranges = {"effect": (lo, hi), "discount_rate": discount_rates, "horizon_years": horizons, "decay": decays}
    table = tornado_table(run, ranges, base=value(base_s))
    unused = {"horizon_years", "decay"} if contract.family != "savings_share" else set()
    if not (contract.invested or contract.final_date):
        unused.add("discount_rate")
    table["note"] = np.where(table["parameter"].isin(unused), "does not enter this contract's rule", "")
    return table
