"""The appendix chapter: minimum detectable effect, parameters, versions and the results sidecar."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator.contracts.power import minimum_detectable_effect
from evaluator.errors import EvaluatorError
from evaluator.formatting import localized
from evaluator.i18n import LANGUAGES
from evaluator.i18n import gettext as _
from evaluator.policy import t_df
from evaluator.provenance import package_versions
from evaluator.reporting.contract_value import ContractValue
from evaluator.reporting.data_chapter import small_cohorts
from evaluator.reporting.html import Html, label, labels, render_macro, render_text, table_html
from evaluator.reporting.methods import display_parameters, method_words
from evaluator.reporting.pipeline import (
    OUT_OF_CORE_NOTE,
    DidFit,
    MatchedFit,
    collect_warnings,
    estimate_did,
    page_notes,
    shown_notes,
)

#: The template of this chapter (the MDE section, the TWFE check and the appendix).
CHAPTER = "chapters/appendix.html.j2"

__all__ = [
    "TWFE_CHECK_TOLERANCE",
    "TwfeCheck",
    "appendix",
    "mde_of",
    "mde_section",
    "mde_sentence",
    "reproduce_twfe",
    "results_extra",
]


# -- minimum detectable effect -----------------------------------------------------------------------------------------
def mde_sentence(
    mde: float,
    *,
    estimate: float,
    target: float | None = None,
    outcome_label: str = "",
    alpha: float = 0.05,
    power: float = 0.8,
    significant: bool | None = None,
) -> str:
    """What the minimum detectable effect means for this evaluation, in words.

    Says whether the estimate is larger than the MDE and, given a contract
    ``target``, whether the target could ever be detected with this design.

    Examples
    --------
    >>> mde_sentence(0.3, estimate=-0.45, target=0.2, outcome_label="days")  # doctest: +ELLIPSIS
    'With this data... The contract target of 0.2 days is smaller than the MDE: this evaluation could not reliably...'
    """
    return render_text(
        "sentences/mde.txt.j2",
        mde=mde,
        label=f" {outcome_label}" if outcome_label else "",
        level=round(100 * alpha),
        power_pct=round(100 * power),
        estimate=estimate,
        target=target,
        significant=significant,
    )


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
    mde = mde_of(fit, power=power)
    text = mde_sentence(
        mde,
        estimate=r.estimate,
        target=target,
        outcome_label=s.outcome_label,
        alpha=r.alpha,
        power=power,
        significant=bool(r.pvalue < r.alpha),
    )
    return render_macro(CHAPTER, "mde", text, mde, t_df(fit.n_clusters), fit.n_clusters)


def mde_of(fit: DidFit | MatchedFit, *, power: float = 0.8) -> float:
    """The minimum detectable effect of the main estimate (few clusters: :func:`~evaluator.policy.t_df`)."""
    return minimum_detectable_effect(fit.result, alpha=fit.result.alpha, power=power, df=t_df(fit.n_clusters))


# -- appendix ----------------------------------------------------------------------------------------------------------
def plain_value(v: Any) -> str:
    """A parameter's value as the page shows it (the words are in the labels catalog)."""
    if v is None or v == "" or (isinstance(v, (list, tuple)) and not v):
        return str(labels().cell_words["none"])
    if isinstance(v, bool):
        return label("yes_no", v)
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if isinstance(v, (int, float)):
        return localized(str(v))  # as Python writes it ("0.05", "999"), with the language's separators
    return str(v)


def _parameter(name: str, value: Any) -> tuple[str, str]:
    """A parameter's row in the appendix: its label and its value in words (the language by its own name)."""
    words = labels()
    if name == "language":
        shown = LANGUAGES.get(value, plain_value(value))
    else:
        shown = words.parameter_values.get(f"{name}={value}", plain_value(value))
    return str(words.parameter_names.get(name, name)), str(shown)


def _frame(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    keep = [c for c in columns if c in table.columns]
    out = table[keep].rename(columns=columns)
    for c in out.columns:
        if out[c].dtype.kind == "f" and c in (columns.get("cohort"), columns.get("time"), columns.get("event_time")):
            out[c] = out[c].map(lambda v: "" if pd.isna(v) else localized(f"{int(v)}"))
    return out


def appendix(fit: DidFit | MatchedFit, *, manifest: str | Path = "manifest.json") -> Html:
    """Technical appendix, in collapsible sections: method, every estimate as a table, checks, parameters, versions.

    Nothing is a preformatted dump: the group-time effects and the event study are
    HTML tables, without the cells of cohorts below ``min_cell`` units.
    """
    r, s = fit.result, fit.settings
    mc = s.min_cell
    words = labels()
    cells = event = None
    n_small = n_hidden = 0
    check = None
    if isinstance(fit, DidFit):
        from evaluator.reporting.data_chapter import shown_event_table

        t = r.table
        if "cohort" in t.columns:
            small = small_cohorts(fit)
            keep = ~t["cohort"].isin(small) & t["cohort"].notna()
            n_small = len(small)
            cells = table_html(_frame(t.loc[keep], words.cell_columns), css_class="evaluator-table att-gt")
        et, n_hidden = shown_event_table(fit)
        et = et.loc[et["event_time"].notna()]
        event = table_html(_frame(et, words.event_columns), css_class="evaluator-table event-table")
        tw = reproduce_twfe(fit)
        # the relative difference in scientific notation, one decimal ("1.2e-05"), with the language's separators
        difference = localized(f"{tw.relative_difference:.1e}")
        check = render_macro(CHAPTER, "twfe_check", tw, s.estimator == "twfe", difference)
    return render_macro(
        CHAPTER,
        "appendix",
        method=method_words(fit),
        design=fit.design,
        notes=shown_notes(fit.notes, mc),
        cells=cells,
        small=n_small,
        hidden=n_hidden,
        min_cell=mc,
        event=event,
        check=check or Html(""),
        parameters=[_parameter(k, v) for k, v in display_parameters(s).items()],
        versions=list(package_versions().items()),
        manifest=manifest_facts(manifest),
    )


def manifest_facts(manifest: str | Path) -> list[tuple[str, str]] | None:
    """The run record the appendix shows from ``manifest.json`` (status, times, seed, commit); None without one."""
    path = Path(manifest)
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("status", "started", "finished", "duration_s", "seed", "git_commit")
    return [(k, plain_value(m[k])) for k in keys if m.get(k) not in (None, "")]


@dataclass(frozen=True)
class TwfeCheck:
    """The two-way fixed-effects estimate by evaluator and by linearmodels PanelOLS, on the same panel.

    ``se`` is PanelOLS's clustered standard error (``group_debias``: G/(G-1) and (N-1)/(N-K) with
    every fixed effect in K); ``se_our_count`` is the same with evaluator's K, which leaves out unit
    effects nested in clusters. ``error`` says why the check could not be made (the rest is then NaN).
    """

    ours: float
    ours_se: float
    estimate: float = math.nan
    se: float = math.nan
    se_our_count: float = math.nan
    k_ours: int = 0
    k_linearmodels: int = 0
    cluster: str = ""
    error: str = ""

    @property
    def relative_difference(self) -> float:
        """``|PanelOLS - ours| / |ours|`` (absolute difference when ours is 0)."""
        return abs(self.estimate - self.ours) / (abs(self.ours) or 1.0)

    @property
    def agrees(self) -> bool:
        """True when the two estimates agree to 1e-6 relative."""
        return self.relative_difference <= TWFE_CHECK_TOLERANCE


#: Largest relative difference between evaluator's and PanelOLS's TWFE estimate that counts as the same.
TWFE_CHECK_TOLERANCE = 1e-6


def reproduce_twfe(fit: DidFit) -> TwfeCheck:
    """Re-estimate the two-way fixed-effects effect with linearmodels PanelOLS, independently of evaluator.

    The TWFE estimate checked is the report's main one when the estimator is ``"twfe"``, else the
    robustness table's TWFE row (without covariates when the Callaway-Sant'Anna fit has some, which
    the unit effects would absorb). PanelOLS fits the outcome on the treatment indicator
    ``1[cohort != 0 and time >= cohort]`` (and the covariates) with entity and time effects and
    standard errors clustered by the report's cluster column. Nothing here changes the fit or its
    notes: the check is shown in the appendix only, never written to ``results.json``.
    """
    s, panel = fit.settings, fit.panel
    if fit.aggregates is not None:  # two-way fixed effects and PanelOLS both need the panel in memory
        return TwfeCheck(math.nan, math.nan, error=_(OUT_OF_CORE_NOTE))
    covs = list(s.covariates) if s.estimator == "twfe" else []
    if s.estimator == "twfe":
        ours = fit.result
    else:
        try:
            with collect_warnings([]):
                ours = estimate_did(panel, s, estimator="twfe", inference="cluster", covariates=covs)
        except (EvaluatorError, ValueError, np.linalg.LinAlgError) as exc:
            # the error is shown on the page: its words in the reader's language, the exception's own in English
            error = _("evaluator's own estimate failed: %(error)s") % {"error": str(exc).splitlines()[0]}
            return TwfeCheck(math.nan, math.nan, error=error)
    cluster = s.cluster or s.unit
    base = TwfeCheck(ours.estimate, ours.se, k_ours=ours.design.n_params or 0, cluster=cluster)
    try:
        from linearmodels.panel import PanelOLS  # imported here: only DiD appendices need it

        g = panel[s.cohort].to_numpy(dtype=float)
        t = panel[s.time].to_numpy(dtype=float)
        treated = np.isfinite(g) & (g != 0) & (t >= g)
        index = pd.MultiIndex.from_arrays([panel[s.unit].to_numpy(), t], names=["unit", "time"])
        x = pd.DataFrame({"att": treated.astype(float)}, index=index)
        for c in covs:
            x[c] = panel[c].to_numpy(dtype=float)
        y = pd.Series(panel[s.outcome].to_numpy(dtype=float), index=index, name=s.outcome)
        clusters = pd.Series(pd.factorize(panel[cluster])[0], index=index, name="cluster")
        with collect_warnings([]):
            res = PanelOLS(y, x, entity_effects=True, time_effects=True).fit(
                cov_type="clustered", clusters=clusters, group_debias=True
            )
    except Exception as exc:
        return replace(base, error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    n, k_lm = int(res.nobs), int(res.nobs - res.df_resid)
    se = float(res.std_errors["att"])
    rescale = math.sqrt((n - k_lm) / (n - base.k_ours)) if base.k_ours else math.nan
    return replace(base, estimate=float(res.params["att"]), se=se, se_our_count=se * rescale, k_linearmodels=k_lm)


def results_extra(
    fit: DidFit | MatchedFit, robustness: pd.DataFrame | None = None, sensitivity: Any = None
) -> dict[str, Any]:
    """Extra numbers for ``results.json``: parameters, MDE, pre-trend check, robustness, sensitivity and notes."""
    extra: dict[str, Any] = {
        "parameters": display_parameters(fit.settings),
        "mde": mde_of(fit),
        "notes": page_notes(fit.notes),
        "min_cell": fit.settings.min_cell,
    }
    if isinstance(fit, DidFit):
        extra["pretrend"] = {k: v for k, v in fit.pretrend.items() if k != "sentence"}
        extra["n_clusters"] = fit.n_clusters
    else:
        mc = fit.settings.min_cell
        # counts of people below min_cell are written as "<5", as on the page (disclosure control)
        extra["match"] = {
            k: (f"<{mc}" if k != "control_reuse_max" and 0 < v < mc else int(v)) if float(v).is_integer() else float(v)
            for k, v in fit.match.counts().items()
        }
    if robustness is not None:
        extra["robustness"] = robustness.replace({np.nan: None}).to_dict(orient="records")
    if sensitivity is not None:  # evaluator.reporting.sensitivity: bounds per M-bar and the breakdown values
        extra["sensitivity"] = sensitivity.to_dict()
    return extra
