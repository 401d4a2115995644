"""The value of a report's fit under a contract: observed levels, the contract's estimate and its verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluator.errors import EvaluatorError
from evaluator.formatting import num
from evaluator.i18n import N_, ngettext
from evaluator.i18n import gettext as _
from evaluator.policy import t_df
from evaluator.reporting.pipeline import DidFit, MatchedFit, SyntheticFit, collect_warnings
from evaluator.reporting.settings import MatchedSettings

__all__ = [
    "ContractValue",
    "comparison_level",
    "FINNISH_LESSON",
    "RATE_CARD_LESSON",
    "contract_value",
    "observed_pre_post",
    "settlement_record",
]


# -- contract and value ------------------------------------------------------------------------------------------------
#: Why the contract's own rule and the counterfactual payment can differ: marked for the catalogs, translated
#: (``gettext(FINNISH_LESSON)``) where the contract chapter shows it.
FINNISH_LESSON = N_(
    "Why the two can differ: a before/after (pre/post) rule pays on the change among participants, which also "
    "contains whatever would have happened anyway, such as a general fall in sick leave; the counterfactual estimate "
    "removes that change using the comparison group. In the Finnish sick-leave social impact bond the intervention's "
    "estimated effect was far smaller than the target, while the before/after comparison could still meet it."
)
RATE_CARD_LESSON = N_(
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
    if fit.aggregates is not None:  # out of core: from the streamed sums by cohort and period
        level = fit.aggregates.mean_where(before=False)
        return math.nan if level is None else level
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
    if fit.aggregates is not None:  # out of core: one more pass over the rows, by unit
        from evaluator.data.aggregates import window_means

        return window_means(p, unit=s.unit, time=s.time, outcome=s.outcome, cohort=s.cohort, periods=periods)
    g = p[s.cohort]
    t = p.loc[g != 0].assign(_e=p[s.time] - g)
    before = t.loc[(t["_e"] < 0) & (t["_e"] >= -periods)].groupby(s.unit)[s.outcome].mean()
    after = t.loc[(t["_e"] >= 0) & (t["_e"] < periods)].groupby(s.unit)[s.outcome].mean()
    both = before.index.intersection(after.index)
    if len(both) == 0:
        return None
    return {"before": float(before[both].mean()), "after": float(after[both].mean()), "units": int(len(both))}


def comparison_level(m: Any, s: MatchedSettings) -> float | None:
    """Matched comparison group's (weighted) mean outcome: the counterfactual level."""
    d = m.data
    if "match_weight" not in d.columns or s.outcome not in d.columns:
        return None
    c = d.loc[(d[s.treat] == 0) & (d["match_weight"] > 0)]
    if c.empty:
        return None
    return float(np.average(c[s.outcome].to_numpy(float), weights=c["match_weight"].to_numpy(float)))


def _unit_cost_country(contract: Any) -> str | None:
    from evaluator.contracts.economics import load_unit_costs

    table = load_unit_costs(outcome=contract.metric)
    countries = [str(c).upper() for c in dict.fromkeys(table["country"])]
    if not countries:
        return None
    currency = {"UK": "GBP", "DK": "DKK"}
    for c in countries:
        if currency.get(c) == contract.currency:
            return c
    return countries[0]


def _synthetic_levels(fit: SyntheticFit, periods: int) -> dict[str, float]:
    """The programme unit's observed mean before (last ``periods``) and after (first ``periods``) its start."""
    tr = fit.result.trajectories
    pre, post = tr.loc[~tr["post"], "treated"], tr.loc[tr["post"], "treated"]
    n = min(periods, len(pre), len(post))  # equal windows on both sides, as the page says
    return {
        "before": float(pre.tail(n).mean()),
        "after": float(post.head(n).mean()),
        "post": float(post.mean()),
        "periods": float(n),
    }


def contract_value(fit: DidFit | MatchedFit | SyntheticFit) -> ContractValue | None:
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
    from evaluator.contracts.economics import load_unit_costs, socio_economic_return
    from evaluator.contracts.effect import cohorts_from_result
    from evaluator.contracts.power import power
    from evaluator.contracts.rules import improvement_slope
    from evaluator.contracts.settlement import settle

    s, r = fit.settings, fit.result
    c = s.contract
    if c is None:
        return None
    notes: list[str] = []
    kwargs: dict[str, Any] = {}
    observed_text = ""
    per_cohort = c.thresholds.get("per_cohort") is not None
    comparison: dict[Any, float] = {}
    if isinstance(fit, SyntheticFit):  # one unit: its own observed levels, the estimate for the rest
        periods = c.baseline.get("periods", 12) if c.family == "pre_post_target" else 12
        periods = int(periods) if isinstance(periods, (int, float)) and periods >= 1 else 12
        obs = _synthetic_levels(fit, periods)
        if per_cohort:
            kwargs["overall_only"] = True
        if c.measure == "relative":
            comparison["overall"] = obs["post"] - r.estimate
        if c.family == "pre_post_target":
            kwargs["observed"] = {"before": obs["before"], "after": obs["after"]}
            shown = int(obs["periods"])
            text = ngettext(
                "Observed among the programme group: mean %(outcome)s %(before)s in the %(periods)d period "
                "before each unit's start and %(after)s in the %(periods)d period after (a change of %(change)s).",
                "Observed among the programme group: mean %(outcome)s %(before)s in the %(periods)d periods "
                "before each unit's start and %(after)s in the %(periods)d periods after (a change of %(change)s).",
                shown,
            )
            observed_text = text % {
                "outcome": s.outcome,
                "before": num(obs["before"]),
                "after": num(obs["after"]),
                "periods": shown,
                "change": num(obs["after"] - obs["before"]),
            }
        elif c.family == "rate_card":
            kwargs["observed"] = obs["post"]
            observed_text = _("Observed among the programme group after its start: mean %(outcome)s %(level)s.") % {
                "outcome": s.outcome,
                "level": num(obs["post"]),
            }
    elif isinstance(fit, DidFit):
        if per_cohort:
            if s.estimator == "callaway_santanna":
                cohorts = cohorts_from_result(r.aggregate("group"))  # type: ignore[attr-defined]
                if cohorts:
                    kwargs["cohorts"] = cohorts
            if "cohorts" not in kwargs:
                kwargs["overall_only"] = True
                notes.append(_("per-cohort payments need Callaway-Sant'Anna effects by cohort; only the overall rule"))
        if c.measure == "relative":
            comparison["overall"] = _treated_post_mean(fit) - r.estimate
        if c.family == "pre_post_target":
            periods = c.baseline.get("periods", 12)
            periods = int(periods) if isinstance(periods, (int, float)) and periods >= 1 else 12
            obs = observed_pre_post(fit, periods=periods)
            if obs is not None:
                kwargs["observed"] = {"before": obs["before"], "after": obs["after"]}
                # TRANSLATORS: %(outcome)s is a column of the data (sick_days); the periods are those of the data.
                text = ngettext(
                    "Observed among the programme group: mean %(outcome)s %(before)s in the %(periods)d period "
                    "before each unit's start and %(after)s in the %(periods)d period after (a change of %(change)s).",
                    "Observed among the programme group: mean %(outcome)s %(before)s in the %(periods)d periods "
                    "before each unit's start and %(after)s in the %(periods)d periods after (a change of %(change)s).",
                    periods,
                )
                observed_text = text % {
                    "outcome": s.outcome,
                    "before": num(obs["before"]),
                    "after": num(obs["after"]),
                    "periods": periods,
                    "change": num(obs["after"] - obs["before"]),
                }
        elif c.family == "rate_card":
            level = _treated_post_mean(fit)
            kwargs["observed"] = level
            # TRANSLATORS: %(outcome)s is a column of the data; %(level)s its mean.
            observed_text = _("Observed among the programme group after its start: mean %(outcome)s %(level)s.") % {
                "outcome": s.outcome,
                "level": num(level),
            }
    else:
        level = comparison_level(fit.match, s)
        if level is not None:
            comparison["overall"] = level
        if per_cohort:
            if fit.by_cohort:
                kwargs["cohorts"] = {g: res for g, (_, res) in fit.by_cohort.items()}
                for g, (m, _res) in fit.by_cohort.items():
                    lv = comparison_level(m, s)
                    if lv is not None:
                        comparison[g] = lv
            else:
                kwargs["overall_only"] = True
                notes.append(
                    _(
                        "the contract pays per cohort but no cohort column was given (parameter cohort): "
                        "only the overall rule is settled"
                    )
                )
        if c.family == "rate_card":
            t = fit.match.data
            treated = t.loc[(t[s.treat] == 1) & (t.get("match_weight", 1) > 0), s.outcome]
            kwargs["observed"] = float(treated.mean())
            # TRANSLATORS: %(outcome)s is a column of the data; %(level)s its mean.
            observed_text = _("Observed among matched participants: mean %(outcome)s %(level)s.") % {
                "outcome": s.outcome,
                "level": num(kwargs["observed"]),
            }
        elif c.family == "pre_post_target":
            notes.append(_("a matched comparison has no before/after measurement: the pre/post rule is not shown"))
    if comparison and c.measure == "relative":
        kwargs["comparison"] = comparison
    with collect_warnings(notes):
        settlement = settle(c, r, **kwargs)
    notes.extend(n for n in settlement.notes if n not in notes)
    # the main threshold in the outcome's own units, and the power to cross it at the estimated effect
    threshold = c.thresholds.get("overall")
    if threshold is None:
        threshold = c.thresholds.get("per_cohort")
    cut = tp = None
    if threshold is not None:
        slope = improvement_slope(c, comparison.get("overall"))
        if math.isfinite(slope) and slope != 0:
            cut = float(threshold) / slope
            df = t_df(fit.n_clusters)
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
        # TRANSLATORS: %(metric)s is the contract's outcome, a column of the data.
        text = _("no bundled example unit costs for %(metric)s: the socio-economic return is not shown")
        notes.append(text % {"metric": c.metric})
    else:
        costs = load_unit_costs(country, c.metric)
        currency = str(costs["currency"].iloc[0])
        main_payer = str(costs.loc[costs["cost"].abs().idxmax(), "payer"])
        cost: Any = 0.0
        rate = float(getattr(s, "exchange_rate", 0.0) or 0.0)
        if currency == c.currency:
            cost = {main_payer: settlement.due}
        elif c.currency and rate > 0:
            cost = {main_payer: settlement.due * rate}
            # TRANSLATORS: %(contract)s and %(costs)s are currency codes (EUR, DKK); %(rate)s a number.
            text = _(
                "the outcome payments (%(contract)s) enter the socio-economic return converted to %(costs)s at "
                "%(rate)s %(costs)s per %(contract)s (the report's exchange rate)"
            )
            notes.append(text % {"contract": c.currency, "costs": currency, "rate": num(rate, 4)})
        else:
            if c.currency:
                # TRANSLATORS: %(contract)s and %(costs)s are currency codes (EUR, DKK).
                text = _(
                    "the contract is in %(contract)s but the example unit costs in %(costs)s: the outcome payments "
                    "are left out of the socio-economic return"
                )
            else:
                # TRANSLATORS: %(costs)s is a currency code (DKK); the contract names no currency.
                text = _(
                    "the contract is in no currency but the example unit costs in %(costs)s: the outcome payments "
                    "are left out of the socio-economic return"
                )
            notes.append(text % {"contract": c.currency, "costs": currency})
        try:
            with collect_warnings(notes):
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
            # TRANSLATORS: %(error)s is the reason, an error message in English.
            notes.append(_("the socio-economic return could not be computed: %(error)s") % {"error": exc})
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
