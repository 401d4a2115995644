"""How much the settlement moves when one assumption moves: the effect, the discount rate, the horizon, the decay."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.contracts.economics import tornado_table
from evaluator.contracts.effect import read_effect
from evaluator.contracts.settlement import Settlement, settle
from evaluator.contracts.terms import Contract

__all__ = ["settlement_sensitivity"]


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
        :func:`evaluator.contracts.economics.plot_tornado`.

    Examples
    --------
    >>> c = Contract.from_dict({"name": "x", "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
    ...     "payment": {"family": "savings_share", "share": 0.5, "unit_value": 100}, "horizon_years": 5})
    >>> t = settlement_sensitivity(c, 2.0, se=0.5)
    >>> sorted(t["parameter"])
    ['decay', 'discount_rate', 'effect', 'horizon_years']
    """
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
                    k: read_effect(v, se=None, alpha=0.05, draws=None, label="").estimate + shift
                    for k, v in coh.items()
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
