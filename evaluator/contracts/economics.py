"""What is an effect worth to the public budget? A SØM-style calculation.

:func:`socio_economic_return` turns an effect per participant into yearly changes
in public spending, split by who pays (Danish kommune / region / stat; UK local
authority / NHS / central government), lets the effect fade by a yearly decay,
discounts, and reports the net present value per payer and in total, the
break-even year and a cumulative cash-flow table and plot. The defaults are
module constants that carry their source and year (:class:`Assumption`); every
one can be overridden. Unit costs ship as a small table of *examples to replace*
(``evaluator/datasets/unit_costs.csv``, :func:`load_unit_costs`).

:func:`tornado_table` and :func:`plot_tornado` show which assumption moves the
result most; :meth:`SocioEconomicReturn.sensitivity` and
:func:`evaluator.contracts.settlement_sensitivity` build on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluator.files import PACKAGE, jsonable
from evaluator.formatting import money, percent
from evaluator.i18n import N_, ngettext
from evaluator.i18n import gettext as _
from evaluator.results.base import Result
from evaluator.results.display import Display, Shown

__all__ = [
    "DECAY_SCENARIOS",
    "DISCOUNT_RATE",
    "HORIZONS",
    "PAYERS",
    "UNIT_COSTS_PATH",
    "Assumption",
    "SocioEconomicReturn",
    "assumptions",
    "load_unit_costs",
    "payer_label",
    "plot_tornado",
    "scenarios",
    "socio_economic_return",
    "tornado_table",
]


@dataclass(frozen=True)
class Assumption:
    """A default with where it comes from.

    Examples
    --------
    >>> DISCOUNT_RATE.value
    0.035
    """

    value: Any
    source: str
    year: int | str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.value} ({self.source}, {self.year})"


DISCOUNT_RATE = Assumption(
    0.035,
    "Danish Ministry of Finance real discount rate (since 2021); UK HM Treasury Green Book, years 0 to 30",
    2021,
    "real rate, applied to flows in constant prices",
)
HORIZONS = Assumption((5, 10), "evaluator default: short and long horizons to report side by side", 2024)
DECAY_SCENARIOS = Assumption(
    (0.0, 0.25, 0.5),
    "evaluator default: no fade, a quarter and a half of the effect lost each year",
    2024,
    "effects of social interventions often fade; show the range rather than pick one",
)
#: Payers by country, in the order tables show them.
PAYERS: Mapping[str, tuple[str, ...]] = {
    "DK": ("kommune", "region", "stat"),
    "UK": ("local authority", "NHS", "central government"),
}
UNIT_COSTS_PATH = PACKAGE / "data" / "datasets" / "unit_costs.csv"
#: Discount rates above this are refused as a percentage written by mistake.
MAX_RATE = 0.25
TOTAL = "total"
#: What the reader reads for the payers evaluator names itself (the rest, kommune, stat, region, are official names).
PAYER_LABELS = {
    # TRANSLATORS: the row and line of all payers together (net present value to the public budget).
    TOTAL: N_("total"),
    # TRANSLATORS: the only payer when the unit costs are not split by who pays.
    "public budget": N_("public budget"),
}


def payer_label(payer: str) -> str:
    """A payer as the reader reads it: ``"total"`` and ``"public budget"`` translated, every other name as it is.

    The tables keep the names (``SocioEconomicReturn.npv``, results.json); this is what a page shows.

    >>> payer_label("total"), payer_label("kommune")
    ('total', 'kommune')
    """
    payer = str(payer)
    return _(PAYER_LABELS[payer]) if payer in PAYER_LABELS else payer


def _whole(x: float, currency: str) -> str:
    """An amount in whole units of its currency (:func:`evaluator.formatting.money` of the rounded amount)."""
    return money(round(x) if math.isfinite(x) else x, currency)


def assumptions() -> pd.DataFrame:
    """The default assumptions with their sources and years.

    Examples
    --------
    >>> assumptions()["parameter"].tolist()
    ['discount_rate', 'horizon_years', 'decay']
    """
    rows = [("discount_rate", DISCOUNT_RATE), ("horizon_years", HORIZONS), ("decay", DECAY_SCENARIOS)]
    return pd.DataFrame(
        [{"parameter": n, "value": str(a.value), "source": a.source, "year": a.year, "note": a.note} for n, a in rows]
    )


def load_unit_costs(country: str | None = None, outcome: str | None = None) -> pd.DataFrame:
    """The bundled unit-cost table: EXAMPLES TO REPLACE, every row with its source and a note.

    Columns ``outcome, unit, payer, country, cost, currency, year, source, note``.
    ``cost`` is the public-budget cost of one unit of the outcome; a negative cost
    means the budget gains (a person in work pays tax and draws no benefit).

    Examples
    --------
    >>> t = load_unit_costs("DK", "sick_days")
    >>> t["payer"].tolist(), set(t["source"])
    (['kommune', 'stat', 'region'], {'illustrative'})
    """
    table = pd.read_csv(UNIT_COSTS_PATH)
    if country is not None:
        table = table[table["country"].str.upper() == country.upper()]
    if outcome is not None:
        table = table[table["outcome"] == outcome]
    return table.reset_index(drop=True)


# -- validation ---------------------------------------------------------------------------
def _check_rate(rate: float, name: str = "discount_rate") -> float:
    rate = float(rate)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"{name}={rate!r} must be a non-negative fraction, e.g. 0.035 for 3.5%")
    if rate > MAX_RATE:
        raise ValueError(
            f"{name}={rate:g} is above {MAX_RATE:g}: it looks like a percentage written by mistake; "
            f"write the rate as a fraction, {rate / 100:g} for {rate:g}%"
        )
    return rate


def _check_horizon(h: Any) -> int:
    hf = float(h)
    if not math.isfinite(hf) or hf <= 0 or not hf.is_integer():
        raise ValueError(f"horizon_years={h!r} must be a positive whole number of years, e.g. 5 or 10")
    return int(hf)


def _check_nonneg(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}={value!r} must be a non-negative number")
    return v


# -- inputs -------------------------------------------------------------------------------
def _effects(effect: Any, outcome: str | None) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """outcome -> effect per participant, and outcome -> confidence interval where known."""
    if isinstance(effect, Result):
        name = outcome or effect.outcome or "outcome"
        return {name: effect.estimate}, {name: effect.ci}
    if isinstance(effect, Mapping):
        out, cis = {}, {}
        for k, v in effect.items():
            e, c = _effects(v, str(k))
            out.update(e)
            cis.update(c)
        return out, cis
    return {outcome or "outcome": float(effect)}, {}


def _costs(
    unit_costs: Any, outcomes: list[str], payer_split: Mapping[str, float] | None, country: str | None
) -> pd.DataFrame:
    """Long table outcome, payer, cost per unit of outcome."""
    if isinstance(unit_costs, str):
        unit_costs = load_unit_costs(unit_costs)
    if isinstance(unit_costs, pd.DataFrame):
        t = unit_costs
        if country is not None and "country" in t:
            t = t[t["country"].str.upper() == country.upper()]
        missing = [o for o in outcomes if o not in set(t["outcome"])]
        if missing:
            raise ValueError(
                f"no unit costs for outcome(s) {missing}; the table has {sorted(set(t['outcome']))}"
                + (f" for country {country}" if country else "")
                + ". Pass effect={outcome: value} with the table's outcome names or unit_costs={outcome: cost}"
            )
        t = t[t["outcome"].isin(outcomes)]
        dup = t.duplicated(["outcome", "payer"])
        if dup.any():
            raise ValueError(
                "the unit-cost table has several rows for the same outcome and payer "
                f"({t.loc[dup, ['outcome', 'payer']].drop_duplicates().values.tolist()}); "
                "choose a country with country='DK' or 'UK'"
            )
        return t[["outcome", "payer", "cost"]].astype({"cost": float}).reset_index(drop=True)
    if not isinstance(unit_costs, Mapping):
        raise ValueError("unit_costs must be a mapping outcome -> cost (or -> {payer: cost}), a table or 'DK'/'UK'")
    rows = []
    for o in outcomes:
        if o not in unit_costs:
            if len(outcomes) == 1 and len(unit_costs) == 1:
                value = next(iter(unit_costs.values()))
            else:
                raise ValueError(f"no unit cost for outcome {o!r}; unit_costs has {sorted(unit_costs)}")
        else:
            value = unit_costs[o]
        if isinstance(value, Mapping):
            rows += [{"outcome": o, "payer": str(p), "cost": float(c)} for p, c in value.items()]
        elif payer_split is not None:
            rows += [{"outcome": o, "payer": str(p), "cost": float(value) * s} for p, s in payer_split.items()]
        else:
            rows.append({"outcome": o, "payer": "public budget", "cost": float(value)})
    return pd.DataFrame(rows)


def _split(payer_split: Mapping[str, float] | None) -> Mapping[str, float] | None:
    if payer_split is None:
        return None
    shares = {str(k): float(v) for k, v in payer_split.items()}
    if any(v < 0 or not math.isfinite(v) for v in shares.values()):
        raise ValueError(f"payer_split={payer_split!r}: shares must be non-negative")
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
        raise ValueError(f"payer_split shares add up to {sum(shares.values()):g}, not 1; give fractions that sum to 1")
    return shares


# -- the result ---------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class SocioEconomicReturn(Display):
    """Yearly public-budget flows of an effect, by payer, discounted. Built by :func:`socio_economic_return`.

    Read it as every result is read (:class:`~evaluator.results.display.Display`):
    ``summary()``, ``_repr_html_()`` in a notebook, ``to_frame()`` and ``to_dict()``.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per year (0 = the intervention's cost) and payer, plus the payer
        ``"total"``: ``year, payer, outcome_change, gross_saving, cost, net,
        discount_factor, discounted, cumulative`` (cumulative of ``discounted``).
    npv : dict
        Net present value per payer and ``"total"``.
    break_even_year : int or None
        First year from which the cumulative discounted total stays at or above zero;
        ``None`` if it never does within the horizon.
    assumptions : pandas.DataFrame
        Every parameter used, its value and its source (``"given"`` when overridden).
    """

    table: pd.DataFrame
    npv: Mapping[str, float]
    break_even_year: int | None
    assumptions: pd.DataFrame
    params: Mapping[str, Any] = field(default_factory=dict)
    _inputs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The yearly table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary for a report's results.json sidecar."""
        return jsonable(
            {
                "npv": dict(self.npv),
                "break_even_year": self.break_even_year,
                "params": dict(self.params),
                "assumptions": self.assumptions,
                "table": self.table,
                "sentence": self.sentence,
            }
        )

    @property
    def sentence(self) -> str:
        """The result in one plain-language sentence, in the current language (:mod:`evaluator.i18n`)."""
        p = self.params
        cur = p.get("currency") or ""
        years = int(p["horizon_years"])
        payers = ", ".join(f"{payer_label(k)} {_whole(v, cur)}" for k, v in self.npv.items() if k != TOTAL)
        values = {
            "years": years,
            "rate": percent(p["discount_rate"], 1),
            "decay": percent(p["decay"], 0),
            "npv": _whole(self.npv[TOTAL], cur),
            "payers": payers,
            "year": self.break_even_year,
        }
        if self.break_even_year is not None:
            # TRANSLATORS: %(npv)s is money; %(payers)s lists each payer with its amount ("kommune DKK 11,867,719,
            # stat DKK 3,560,316"); %(year)d is a year of the horizon (0 = the year of the intervention's cost).
            text = ngettext(
                "Over %(years)d year at a %(rate)s real discount rate and %(decay)s yearly decay, the net present "
                "value to the public budget is %(npv)s (%(payers)s); it breaks even in year %(year)d.",
                "Over %(years)d years at a %(rate)s real discount rate and %(decay)s yearly decay, the net present "
                "value to the public budget is %(npv)s (%(payers)s); it breaks even in year %(year)d.",
                years,
            )
        else:
            # TRANSLATORS: %(npv)s is money; %(payers)s lists each payer with its amount ("kommune DKK 11,867,719,
            # stat DKK 3,560,316").
            text = ngettext(
                "Over %(years)d year at a %(rate)s real discount rate and %(decay)s yearly decay, the net present "
                "value to the public budget is %(npv)s (%(payers)s); it does not break even within %(years)d year.",
                "Over %(years)d years at a %(rate)s real discount rate and %(decay)s yearly decay, the net present "
                "value to the public budget is %(npv)s (%(payers)s); it does not break even within %(years)d years.",
                years,
            )
        return text % values

    def _npv_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"payer": list(self.npv), "npv": list(self.npv.values())})

    # -- what is shown (evaluator.results.display.Display renders it) ----------------------
    def _title(self) -> str:
        return "Socio-economic return (public budget)"

    def _headline(self) -> list[str]:
        return [self.sentence]

    def _tables(self) -> list[Shown]:
        def money(v: Any) -> str:
            return f"{v:,.0f}"

        yearly = self.table[self.table["payer"] == TOTAL][["year", "gross_saving", "cost", "discounted", "cumulative"]]
        return [
            ("", self._npv_frame(), {"npv": money}),
            ("Assumptions", self.assumptions, None),
            ("Yearly totals", yearly, dict.fromkeys(("gross_saving", "cost", "discounted", "cumulative"), money)),
        ]

    def _css_class(self) -> str:
        return "evaluator-economics"

    def __repr__(self) -> str:
        return f"<SocioEconomicReturn npv={self.npv[TOTAL]:,.0f}, break-even year {self.break_even_year}>"

    def plot(self, ax: Any = None) -> Any:
        """Cumulative discounted cash flow by payer and in total, with the break-even year marked.

        Drawn by :func:`evaluator.plots.economics.cumulative_cash_flow`; returns a matplotlib Figure.
        """
        from evaluator.plots.economics import cumulative_cash_flow

        currency = self.params.get("currency") or ""
        names = {str(p): payer_label(p) for p in dict.fromkeys(self.table["payer"])}
        return cumulative_cash_flow(
            self.table, total=TOTAL, break_even_year=self.break_even_year, currency=currency, ax=ax, labels=names
        )

    def sensitivity(
        self,
        *,
        effect_range: tuple[float, float] | None = None,
        discount_rates: tuple[float, float] = (0.0, 0.07),
        horizons: tuple[int, int] | None = None,
        decays: tuple[float, float] = (0.0, 0.5),
    ) -> pd.DataFrame:
        """Tornado table of the total NPV: effect (its interval), discount rate, horizon and decay.

        ``effect_range`` defaults to the effect's confidence interval where a
        :class:`~evaluator.results.Result` was given (one outcome), else +-50%.

        Examples
        --------
        >>> r = socio_economic_return(-1.0, participants=10, unit_costs={"outcome": 100.0}, horizon_years=3)
        >>> sorted(r.sensitivity()["parameter"])
        ['decay', 'discount_rate', 'effect', 'horizon_years']
        """
        inp = self._inputs
        effects: dict[str, float] = inp["effects"]
        if effect_range is None:
            cis = inp["cis"]
            if len(effects) == 1 and cis:
                effect_range = next(iter(cis.values()))
        h = self.params["horizon_years"]
        horizons = horizons or (max(1, h // 2), h * 2)

        def run(**p: Any) -> float:
            kw = {k: inp[k] for k in ("participants", "unit_costs", "intervention_cost", "payer_split", "scale")}
            kw.update(
                horizon_years=p.get("horizon_years", h),
                discount_rate=p.get("discount_rate", self.params["discount_rate"]),
                decay=p.get("decay", self.params["decay"]),
                country=inp["country"],
            )
            eff: Any = effects
            if "effect" in p:
                k = p["effect"]
                eff = {o: k for o in effects} if effect_range is not None else {o: v * k for o, v in effects.items()}
            return socio_economic_return(eff, **kw).npv[TOTAL]

        e_rng = effect_range if effect_range is not None else (0.5, 1.5)
        table = tornado_table(
            run,
            {"effect": e_rng, "discount_rate": discount_rates, "horizon_years": horizons, "decay": decays},
            base=self.npv[TOTAL],
        )
        if effect_range is None:
            table.loc[table["parameter"] == "effect", "note"] = "effect scaled by the low and high factor"
        return table


# -- the calculation -------------------------------------------------------------------------
def socio_economic_return(
    effect: float | Result | Mapping[str, float | Result],
    *,
    participants: float,
    unit_costs: Mapping[str, Any] | pd.DataFrame | str,
    horizon_years: int = HORIZONS.value[0],
    discount_rate: float = DISCOUNT_RATE.value,
    decay: float = 0.0,
    intervention_cost: float | Mapping[str, float] = 0.0,
    payer_split: Mapping[str, float] | None = None,
    outcome: str | None = None,
    country: str | None = None,
    scale: float = 1.0,
    currency: str | None = None,
) -> SocioEconomicReturn:
    """Net present value of an effect to the public budget, by payer (SØM style).

    Parameters
    ----------
    effect : float, Result or mapping outcome -> effect
        Change in the outcome per participant per year in the first year, in the
        unit of its unit cost after ``scale`` (treated minus counterfactual; -1 =
        one sick-leave day fewer). A Result gives its estimate and names its outcome.
    participants : float
        Number of participants.
    unit_costs : mapping, table or country code
        Public-budget cost of one unit of each outcome: ``{outcome: cost}`` (split
        by ``payer_split``), ``{outcome: {payer: cost}}``, a table like
        :func:`load_unit_costs`, or ``"DK"``/``"UK"`` for the bundled examples. A
        negative cost is a gain (taxes paid, benefits not drawn).
    horizon_years : int
        Years over which the effect lasts (defaults: :data:`HORIZONS`).
    discount_rate : float
        Real discount rate as a fraction (default :data:`DISCOUNT_RATE`, 0.035).
        Above 0.25 is refused as a percentage written by mistake.
    decay : float
        Share of the effect lost each year (scenarios: :data:`DECAY_SCENARIOS`).
    intervention_cost : float or mapping payer -> cost
        Cost of the intervention, paid in year 0. A number is split by
        ``payer_split``, or charged to the only payer.
    payer_split : mapping payer -> share, optional
        How a single unit cost (and a numeric intervention cost) divides between
        payers; shares sum to 1.
    outcome : str, optional
        Name of a numeric effect's outcome, to find it in a unit-cost table.
    country : str, optional
        Country of the rows to use from a unit-cost table.
    scale : float
        Multiplier from the effect's unit to the unit cost's yearly unit (12 for
        an effect on sick days per month).
    currency : str, optional
        For printing.

    Returns
    -------
    SocioEconomicReturn

    Notes
    -----
    Year ``t = 1 .. H`` carries the flow ``-effect x scale x participants x (1 - decay)^(t-1)
    x cost_payer``, discounted by ``(1 + r)^-t`` (flows at the end of each year, as
    the Green Book's year 1); the intervention's cost falls in year 0, undiscounted.
    NPV = sum over years of the discounted net flows; the payers' NPVs add up to the total.

    Examples
    --------
    >>> r = socio_economic_return(-2.0, participants=100, unit_costs={"sick_days": {"kommune": 80.0, "stat": 20.0}},
    ...                           outcome="sick_days", horizon_years=2, discount_rate=0.0, intervention_cost=30000,
    ...                           payer_split={"kommune": 1.0, "stat": 0.0})
    >>> r.npv
    {'kommune': 2000.0, 'stat': 8000.0, 'total': 10000.0}
    >>> r.break_even_year
    2
    """
    effects, cis = _effects(effect, outcome)
    n = _check_nonneg(participants, "participants")
    if n == 0:
        raise ValueError("participants=0: give the number of people the effect applies to")
    H = _check_horizon(horizon_years)
    r = _check_rate(discount_rate)
    d = float(decay)
    if not 0 <= d <= 1:
        hint = f" (write {d / 100:g} for {d:g}%)" if 1 < d <= 100 else ""
        raise ValueError(f"decay={decay!r} must be a fraction between 0 and 1{hint}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale={scale!r} must be a positive number")
    split = _split(payer_split)
    costs = _costs(unit_costs, list(effects), split, country)
    payers = list(dict.fromkeys(costs["payer"]))
    if isinstance(intervention_cost, Mapping):
        icost = {str(p): _check_nonneg(v, f"intervention_cost[{p!r}]") for p, v in intervention_cost.items()}
        payers += [p for p in icost if p not in payers]
    else:
        total_cost = _check_nonneg(intervention_cost, "intervention_cost")
        if split is not None:
            icost = {p: total_cost * s for p, s in split.items()}
            payers += [p for p in icost if p not in payers]
        elif len(payers) == 1 or total_cost == 0:
            icost = {payers[0]: total_cost}
        else:
            raise ValueError(
                f"intervention_cost={intervention_cost!r} with several payers {payers}: "
                "give intervention_cost={payer: cost} or payer_split={payer: share}"
            )

    years = np.arange(H + 1)
    fade = np.r_[0.0, (1 - d) ** (years[1:] - 1)]
    eff = pd.Series(effects, dtype=float)
    # Per payer: yearly saving = -(sum over outcomes of effect x cost) x scale x participants x fade.
    per_payer = (
        costs.assign(value=lambda t: -t["cost"] * t["outcome"].map(eff)).groupby("payer", sort=False)["value"].sum()
    )
    per_payer = per_payer.reindex(payers, fill_value=0.0) * scale * n
    gross = np.outer(per_payer.to_numpy(), fade)  # payers x years
    cost = np.zeros_like(gross)
    cost[:, 0] = [icost.get(p, 0.0) for p in payers]
    net = gross - cost
    factor = (1 + r) ** -years.astype(float)
    disc = net * factor
    change = float(eff.sum()) * scale * n * fade
    frame = pd.DataFrame(
        {
            "year": np.tile(years, len(payers) + 1),
            "payer": np.repeat(payers + [TOTAL], H + 1),
            "outcome_change": np.tile(change, len(payers) + 1),
            "gross_saving": np.r_[gross.ravel(), gross.sum(axis=0)],
            "cost": np.r_[cost.ravel(), cost.sum(axis=0)],
            "net": np.r_[net.ravel(), net.sum(axis=0)],
            "discount_factor": np.tile(factor, len(payers) + 1),
            "discounted": np.r_[disc.ravel(), disc.sum(axis=0)],
        }
    )
    frame["cumulative"] = frame.groupby("payer", sort=False)["discounted"].cumsum()
    npv = {p: float(v) for p, v in zip(payers, disc.sum(axis=1), strict=True)}
    npv[TOTAL] = float(disc.sum())
    cum_total = np.cumsum(disc.sum(axis=0))
    negative = np.flatnonzero(cum_total < -1e-9 * max(1.0, np.abs(cum_total).max()))
    if negative.size == 0:
        be: int | None = 0
    elif negative[-1] == H:
        be = None
    else:
        be = int(negative[-1] + 1)

    def src(name: str, value: Any, default: Assumption | None, note: str = "") -> dict[str, Any]:
        used_default = default is not None and (
            value == default.value or (isinstance(default.value, tuple) and value in default.value)
        )
        return {
            "parameter": name,
            "value": str(value),
            "source": f"{default.source} ({default.year})" if used_default else "given",
            "note": note or (default.note if used_default else ""),
        }

    rows = [
        src("discount_rate", r, DISCOUNT_RATE),
        src("horizon_years", H, HORIZONS),
        src("decay", d, DECAY_SCENARIOS),
        src("participants", n, None),
        src("scale", scale, None, "effect's unit to the unit cost's yearly unit"),
    ]
    for o, v in effects.items():
        rows.append(src(f"effect[{o}]", v, None, "per participant, first year"))
    bundled = isinstance(unit_costs, (str, pd.DataFrame))
    for _i, row in costs.iterrows():
        rows.append(
            {
                "parameter": f"unit_cost[{row['outcome']}, {row['payer']}]",
                "value": f"{row['cost']:g}",
                "source": "bundled example table (illustrative: replace)" if bundled else "given",
                "note": "",
            }
        )
    params = {
        "horizon_years": H,
        "discount_rate": r,
        "decay": d,
        "participants": n,
        "scale": scale,
        "currency": currency,
        "effects": effects,
        "intervention_cost": icost,
    }
    inputs = {
        "effects": effects,
        "cis": cis,
        "participants": n,
        "unit_costs": unit_costs,
        "intervention_cost": intervention_cost,
        "payer_split": payer_split,
        "scale": scale,
        "country": country,
    }
    return SocioEconomicReturn(frame, npv, be, pd.DataFrame(rows), params, inputs)


def scenarios(
    effect: Any,
    *,
    horizons: tuple[int, ...] = HORIZONS.value,
    decays: tuple[float, ...] = DECAY_SCENARIOS.value,
    **kwargs: Any,
) -> pd.DataFrame:
    """Total NPV and break-even year over a grid of horizons and decay rates (the defaults' scenarios).

    Examples
    --------
    >>> t = scenarios(-1.0, participants=10, unit_costs={"outcome": 100.0}, discount_rate=0.0)
    >>> t["npv_total"].round(2).tolist()
    [5000.0, 3050.78, 1937.5, 10000.0, 3774.75, 1998.05]
    """
    rows = []
    for h in horizons:
        for d in decays:
            res = socio_economic_return(effect, horizon_years=h, decay=d, **kwargs)
            rows.append(
                {"horizon_years": h, "decay": d, "npv_total": res.npv[TOTAL], "break_even_year": res.break_even_year}
            )
    return pd.DataFrame(rows)


# -- sensitivity ----------------------------------------------------------------------------------
def tornado_table(
    fn: Callable[..., float], ranges: Mapping[str, tuple[Any, Any]], *, base: float | None = None
) -> pd.DataFrame:
    """One-at-a-time sensitivity: ``fn(**{parameter: value})`` at each parameter's low and high value.

    Returns a table ``parameter, low, high, result_low, result_high, swing, note``
    sorted by swing (largest first), with the base result in ``attrs["base"]``.

    Examples
    --------
    >>> t = tornado_table(lambda a=1.0, b=1.0: a * 10 + b, {"a": (0.0, 2.0), "b": (0.0, 3.0)})
    >>> t[["parameter", "swing"]].values.tolist()
    [['a', 20.0], ['b', 3.0]]
    """
    base = fn() if base is None else base
    rows = []
    for name, (lo, hi) in ranges.items():
        r_lo, r_hi = float(fn(**{name: lo})), float(fn(**{name: hi}))
        rows.append(
            {
                "parameter": name,
                "low": lo,
                "high": hi,
                "result_low": r_lo,
                "result_high": r_hi,
                "swing": abs(r_hi - r_lo),
                "note": "",
            }
        )
    table = pd.DataFrame(rows).sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs["base"] = float(base)
    return table


def plot_tornado(
    table: pd.DataFrame, *, ax: Any = None, title: str = "", label: str = "result", currency: str = ""
) -> Any:
    """Tornado plot of a :func:`tornado_table`: one bar per parameter from its low to its high result.

    Drawn by :func:`evaluator.plots.economics.tornado`; returns a matplotlib Figure.

    Examples
    --------
    >>> t = tornado_table(lambda a=1.0: a * 10, {"a": (0.0, 2.0)})
    >>> type(plot_tornado(t)).__name__
    'Figure'
    """
    from evaluator.plots.economics import tornado

    return tornado(table, ax=ax, title=title, label=label, currency=currency)
