"""The terms of an outcome contract: read a YAML or JSON file, validate it, build a :class:`Contract`.

A :class:`Contract` holds the terms of a social impact bond or payment-by-results
contract, read from YAML or JSON and validated against
``data_schemas/contract.schema.json`` (:mod:`evaluator.contracts.schema`).
:func:`~evaluator.contracts.settlement.settle` applies the terms to an estimated
effect (:mod:`evaluator.contracts.settlement`).

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

A new family goes in :data:`FAMILIES` and the schema, its payment in
:mod:`evaluator.contracts.rules`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evaluator.contracts.schema import as_date, money_hint, validate_contract
from evaluator.errors import ContractError, Problem
from evaluator.files import jsonable
from evaluator.formatting import localized, money, percent
from evaluator.i18n import gettext as _

__all__ = ["FAMILIES", "FAMILY_LABELS", "MAX_RATE", "Contract", "check_rate", "cohort_key", "keyed", "read_contract"]

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
#: Discount rates above this are refused as a percentage written by mistake.
MAX_RATE = 0.25


def read_contract(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON contract file into a mapping, unvalidated."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(
            [Problem(f"contract file not found: {path}", hint="check the path and the working directory")]
        )
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except Exception as exc:  # any parse failure is a fault of the user's file
        raise ContractError(
            [Problem(f"the file could not be parsed: {type(exc).__name__}: {exc}", hint="check its syntax")],
            source=str(path),
        ) from exc
    return raw


# -- the contract ---------------------------------------------------------------------
def keyed(mapping: Mapping[Any, Any] | None, convert: Callable[[Any], Any] = float) -> dict[str, Any]:
    """``mapping`` with its cohorts keyed by :func:`cohort_key` and its values converted."""
    return {cohort_key(k): convert(v) for k, v in (mapping or {}).items()}


def cohort_key(k: Any) -> str:
    """A cohort as text, so that 1, "1" and 1.0 from YAML, JSON or a Result (``g=1``) agree.

    >>> cohort_key(1.0), cohort_key("g=2"), cohort_key(3)
    ('1', '2', '3')
    """
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
        >>> from evaluator.files import shipped
        >>> folder = shipped("notebooks") / "contracts"
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
        by_cohort = keyed(part.get("by_cohort"))
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
                "by_cohort": keyed(comp.get("by_cohort")),
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
            early_dates=keyed(dates.get("early"), as_date),
            final_date=as_date(dates.get("final")),
            participants=total,
            participants_by_cohort=by_cohort,
            capital=None if inv.get("capital") is None else float(inv["capital"]),
            invested=as_date(inv.get("invested")),
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
                raise ContractError([Problem(f"field '{key}': {changes[key]} is negative", hint=money_hint(key))])
        if "discount_rate" in changes:
            check_rate(changes["discount_rate"])
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
        return jsonable(dict(self.raw))

    def describe(self) -> str:
        """One sentence stating the rule in words (in the current language, :mod:`evaluator.i18n`)."""
        thr = self.thresholds
        falls = self.direction == "decrease"
        cu = self.contract_unit or self.unit

        def amount(x: float) -> str:
            return money(round(x) if math.isfinite(x) else x, self.currency)

        def level(t: float) -> str:
            return percent(t, 1) if self.measure == "relative" else f"{_g(t)} {cu}"

        if self.family == "counterfactual_threshold":
            early, final = thr.get("per_cohort"), thr.get("overall")
            if early is None and final is None:
                return "."
            if early is not None and final is not None and falls:
                text = _(
                    "a cohort is paid early if its fall is at least %(early)s; the final payment is due if all "
                    "cohorts together show a fall of at least %(final)s."
                )
            elif early is not None and final is not None:
                text = _(
                    "a cohort is paid early if its rise is at least %(early)s; the final payment is due if all "
                    "cohorts together show a rise of at least %(final)s."
                )
            elif early is not None and falls:
                text = _("a cohort is paid early if its fall is at least %(early)s.")
            elif early is not None:
                text = _("a cohort is paid early if its rise is at least %(early)s.")
            elif falls:
                text = _("the final payment is due if all cohorts together show a fall of at least %(final)s.")
            else:
                text = _("the final payment is due if all cohorts together show a rise of at least %(final)s.")
            return text % {
                "early": "" if early is None else level(early),
                "final": "" if final is None else level(final),
            }
        if self.family == "fiscal_share":
            text = _("the investor receives %(share)s of the measured net fiscal gain against the control group.")
            return text % {"share": percent(self.share, 0)}
        if self.family == "pre_post_target":
            if self.final_payment and falls:
                # TRANSLATORS: %(amount)s is money ("EUR 1,500,000"), %(metric)s a column of the data (sick_days),
                # %(target)s a number and %(unit)s the contract's unit in words ("sick-leave days per person per year").
                text = _(
                    "%(amount)s is paid if %(metric)s shows a fall of at least %(target)s %(unit)s "
                    "against the baseline period."
                )
            elif self.final_payment:
                # TRANSLATORS: %(amount)s is money ("EUR 1,500,000"), %(metric)s a column of the data,
                # %(target)s a number and %(unit)s the contract's unit in words.
                text = _(
                    "%(amount)s is paid if %(metric)s shows a rise of at least %(target)s %(unit)s "
                    "against the baseline period."
                )
            elif falls:
                # TRANSLATORS: %(amount)s per %(unit)s is a price ("EUR 100 per sick-leave day"), %(metric)s a column
                # of the data, %(target)s a number.
                text = _(
                    "%(amount)s per %(unit)s is paid if %(metric)s shows a fall of at least %(target)s %(unit)s "
                    "against the baseline period."
                )
            else:
                # TRANSLATORS: %(amount)s per %(unit)s is a price ("EUR 100 per sick-leave day"), %(metric)s a column
                # of the data, %(target)s a number.
                text = _(
                    "%(amount)s per %(unit)s is paid if %(metric)s shows a rise of at least %(target)s %(unit)s "
                    "against the baseline period."
                )
            pay = amount(self.final_payment) if self.final_payment else amount(self.price)
            return text % {"amount": pay, "metric": self.metric, "target": _g(thr["overall"]), "unit": cu}
        if self.family == "rate_card":
            # TRANSLATORS: %(amount)s is money; %(unit)s the contract's unit of outcome in words, as its file writes it.
            text = _("%(amount)s is paid per verified outcome (%(unit)s).")
            return text % {"amount": amount(self.price), "unit": cu}
        if self.bonus_cap is not None:
            text = _(
                "the investor is repaid %(share)s of the savings, with the bonus capped at %(cap)s of the capital."
            )
            return text % {"share": percent(self.share, 0), "cap": percent(self.bonus_cap, 0)}
        return _("the investor is repaid %(share)s of the savings.") % {"share": percent(self.share, 0)}

    def __repr__(self) -> str:
        return f"<Contract {self.name!r}: {FAMILY_LABELS[self.family]}, metric {self.metric} ({self.direction})>"


def _g(x: float) -> str:
    """A term as the contract writes it (``2.1``, ``0.075``: the shortest exact form), in the language's separators."""
    return localized(f"{x:g}")


def check_rate(rate: float, name: str = "discount_rate") -> float:
    """``rate`` as a float, refused (:class:`~evaluator.errors.ContractError`) if negative or above :data:`MAX_RATE`."""
    rate = float(rate)
    if not math.isfinite(rate) or rate < 0:
        raise ContractError([Problem(f"{name}={rate!r} must be a non-negative fraction", hint="e.g. 0.035 for 3.5%")])
    if rate > MAX_RATE:
        raise ContractError(
            [
                Problem(
                    f"{name}={rate:g} is above {MAX_RATE:g}",
                    hint=f"write the rate as a fraction: {rate / 100:g} for {rate:g}% (it looks like a percentage)",
                )
            ]
        )
    return rate
