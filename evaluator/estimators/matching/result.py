""":class:`MatchResult`: the matched sample, its balance, and the effect estimated on it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from evaluator.errors import DesignError
from evaluator.estimators.design import as_list, choice, one_column
from evaluator.estimators.matching.frame import _check_columns, _design
from evaluator.estimators.matching.variance import _abadie_imbens, _bootstrap, _pairs_estimate, _set_rows
from evaluator.files import jsonable
from evaluator.formatting import fmt
from evaluator.results.base import Result, tidy_table
from evaluator.results.display import Display, Shown

__all__ = ["Inference", "MatchResult"]

Inference = Literal["pairs", "abadie_imbens", "bootstrap"]
_INFERENCES = ("pairs", "abadie_imbens", "bootstrap")


@dataclass(frozen=True, repr=False, eq=False)
class MatchResult(Display):
    """A matched comparison sample and the tools to read it.

    Built by :func:`match`; do not construct it directly.

    Attributes
    ----------
    data : pandas.DataFrame
        The input data in unit-key order, with the columns ``pscore`` (when a
        propensity score was fitted) and ``match_weight`` (MatchIt-style unit
        weights: 1 for matched treated units; for controls the sum over the sets
        they are in of 1 / (controls in the set), scaled to sum to the number of
        distinct controls used; 0 for unmatched units). For the ATE the weight is
        1 (for a matched unit) + ``K_M(i)``, the unit's total weight as a match,
        unscaled: each group's weights sum to the number of matched units N, and
        ``sum_treated w Y / N - sum_controls w Y / N`` is the (not bias-corrected)
        matching estimate.
    pairs : pandas.DataFrame
        One row per (matched set, control): ``set`` (1, 2, ... in processing
        order), ``treated`` and ``control`` (positions in :attr:`data`),
        ``distance``, ``weight`` (1 / controls in the set). For the ATC
        ``treated`` holds the set's focal unit (a control) and ``control`` its
        matches (treated units). For the ATE one row per (set, match): sets
        ``1..N1`` are the treated units' (matched to controls), then the
        controls' (matched to treated units); ``treated`` and ``control`` are the
        pair's actual treated and control unit and ``focal`` (``"treated"`` or
        ``"control"``) names the one the set is formed around.
    treat, covariates, params, info
        The arguments of :func:`match`, and counts (see :meth:`counts`).

    It reads like every result (:class:`~evaluator.results.display.Display`): ``summary()``
    text, HTML in a notebook, ``to_frame()`` (the balance table) and ``to_dict()``.

    A match holds no effect: it is the comparison sample. The effect on an outcome is
    :meth:`effect`, ``m.effect(outcome, adjust=..., inference=...)``, which returns a
    :class:`~evaluator.results.base.Result` (estimate, standard error, interval, p-value).

    Examples
    --------
    >>> from evaluator.data.simulate import employment_sib
    >>> from evaluator.estimators.matching import match
    >>> sim = employment_sib(n_treated=60, n_pool=600, seed=2)
    >>> m = match(sim.data, treat="treated", covariates=sim.columns["covariates"])
    >>> effect = m.effect("employed_12m", inference="abadie_imbens")  # from the match to an effect
    >>> effect.table["term"].tolist(), bool(effect.ci[0] < effect.estimate < effect.ci[1])
    (['att'], True)
    >>> "m.effect(outcome" in m.summary() and "Balance" in m.summary()
    True
    """

    data: pd.DataFrame
    pairs: pd.DataFrame
    treat: str
    covariates: tuple[str, ...]
    params: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)
    _metric: np.ndarray | None = None
    _focal: np.ndarray | None = None

    # -- samples ---------------------------------------------------------------------
    @property
    def matched(self) -> pd.DataFrame:
        """The matched sample in long form: one row per member of each matched set.

        Columns: the input columns, ``match_set`` (set id), ``match_role``
        (``"treated"`` or ``"control"``), ``match_weight`` (1 for the treated
        unit, 1 / (controls in the set) for each control), ``match_distance``
        (distance to the set's treated unit; 0 for the treated unit) and
        ``pscore`` when fitted. Without replacement each unit appears at most once;
        with replacement a control appears once per set it is in. The index holds
        the units' original index labels. "Treated" is the set's focal unit: a
        control for the ATC. For the ATE ``match_role`` is the unit's actual group
        and ``match_focal`` is True for the set's focal unit (weight 1; its
        matches, of the other group, have weight 1 / matches in the set).
        """
        p = self.pairs
        base = self.data.drop(columns=["match_weight"])
        f_pos, o_pos, w, sets, ft = _set_rows(self)
        first = np.r_[True, sets[1:] != sets[:-1]]  # rows are grouped by set
        ate = self.params["estimand"] == "ATE"
        role_f = np.where(ft[first], "treated", "control") if ate else "treated"
        role_o = np.where(ft, "control", "treated") if ate else "control"
        tr = base.iloc[f_pos[first]].assign(
            match_set=sets[first], match_role=role_f, match_weight=1.0, match_distance=0.0
        )
        co = base.iloc[o_pos].assign(
            match_set=sets, match_role=role_o, match_weight=w, match_distance=p["distance"].to_numpy()
        )
        if ate:
            tr["match_focal"], co["match_focal"] = True, False
        out = pd.concat([tr, co])
        is_match = np.r_[np.zeros(len(tr), dtype=bool), np.ones(len(co), dtype=bool)]
        order = np.lexsort((is_match, out["match_set"].to_numpy()))
        return out.iloc[order]

    @property
    def weights(self) -> pd.Series:
        """MatchIt-style unit weights (0 = unmatched), indexed by the input's index labels, in key order."""
        return self.data["match_weight"].copy()

    def _focal_mask(self) -> np.ndarray:
        return cast(np.ndarray, self._focal)

    # -- summaries ---------------------------------------------------------------------
    def counts(self) -> pd.Series:
        """Counts of the match.

        Returns
        -------
        pandas.Series
            ``treated``, ``treated_matched``, ``treated_dropped_caliper``,
            ``treated_dropped_support``, ``treated_unmatched_other`` (e.g. the pool
            ran out), ``controls``, ``controls_used`` (distinct), ``controls_dropped_support``,
            ``matched_sets``, ``control_reuse_max`` (most sets one control is in),
            ``controls_used_more_than_once``, ``mean_controls_per_set``. For the
            ATE the counts above describe the treated units' sets (and
            ``matched_sets`` all sets); the controls' sets add ``controls_matched``,
            ``controls_dropped_caliper``, ``controls_unmatched_other``,
            ``treated_used``, ``treated_reuse_max``, ``treated_used_more_than_once``
            and ``mean_treated_per_set``.
        """
        return pd.Series(dict(self.info["counts"]), name="count", dtype=object)

    def to_frame(self) -> pd.DataFrame:
        """The balance table (:meth:`balance`): the tidy table of a match."""
        return self.balance()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary: the settings, the counts, the propensity model and the balance."""
        return {
            "estimator": "match",
            "method": self.params["method"],
            "treat": self.treat,
            "covariates": list(self.covariates),
            "params": jsonable(dict(self.params)),
            "counts": jsonable(dict(self.info["counts"])),
            "ps_params": jsonable(self.info.get("ps_params")),
            "balance": jsonable(self.balance()),
        }

    # -- what Display shows ---------------------------------------------------------------
    def _title(self) -> str:
        return f"Matched comparison, {self.params['estimand']}"

    def _subtitle(self) -> tuple[str, str] | None:
        return ("treatment", self.treat)

    def _headline(self) -> list[str]:
        return [self.params["method"]]

    def _facts(self) -> list[tuple[str, str]]:
        c = self.info["counts"]
        facts = [
            ("Treated matched", f"{c['treated_matched']:,} of {c['treated']:,}"),
            ("Controls used", f"{c['controls_used']:,} of {c['controls']:,}"),
        ]
        if self.params["estimand"] == "ATE":
            facts += [
                ("Controls matched", f"{c['controls_matched']:,} of {c['controls']:,}"),
                ("Treated used", f"{c['treated_used']:,} of {c['treated']:,}"),
            ]
        facts += [
            ("Matched sets", f"{c['matched_sets']:,}"),
            ("Most sets one control is in", f"{c['control_reuse_max']:,}"),
        ]
        if self.params["estimand"] == "ATE":
            facts.append(("Most sets one treated unit is in", f"{c['treated_reuse_max']:,}"))
        return facts

    def _tables(self) -> list[Shown]:
        b = self.balance()
        wide = b.pivot(index="term", columns="sample", values="smd").loc[list(dict.fromkeys(b["term"]))]
        after = b[b["sample"] == "after"].set_index("term")
        shown = pd.DataFrame(
            {
                "term": wide.index,
                "smd_before": wide["before"].to_numpy(),
                "smd_after": wide["after"].to_numpy(),
                "var_ratio_after": after.loc[wide.index, "var_ratio"].to_numpy(),
            }
        )
        return [("Balance (standardised mean differences)", shown, fmt)]

    def _closing(self) -> str:
        return (
            "A match holds no effect: estimate one on the matched sample with m.effect(outcome), "
            "e.g. m.effect(outcome, inference='abadie_imbens') (see MatchResult.effect)."
        )

    def _notes(self) -> Sequence[str]:
        return tuple(n for n in (self.info.get("ps_warning"),) if n)

    def balance(self) -> pd.DataFrame:
        """Covariate balance before and after matching, as a tidy table.

        Returns
        -------
        pandas.DataFrame
            One row per term and sample (``"before"``, ``"after"``) with columns
            ``term`` (``distance``: the score matched on, i.e. the propensity score
            or its logit, absent for Mahalanobis; a covariate; or ``covariate[level]`` for each
            level of a categorical), ``covariate``, ``kind`` (``binary`` or
            ``continuous``), ``sample``, ``mean_treated``, ``mean_control``,
            ``smd``, ``var_ratio`` (treated / control, continuous terms only),
            ``ecdf_max``. "Treated" means the focal group of the estimand (the
            controls for the ATC; the treated for the ATE). The SMD divides by the
            focal group's SD before matching; for the ATE by
            ``sqrt((s_treated^2 + s_control^2) / 2)`` (MatchIt, cobalt).
        """
        d = self.data
        focal = self._focal_mask()
        X = _design(d, self.covariates, drop_first=False)
        cov_of = {}
        for c in self.covariates:
            for col in X.columns:
                if col == c or col.startswith(f"{c}["):
                    cov_of[col] = c
        if "match_distance_score" in d.columns:
            X.insert(0, "distance", d["match_distance_score"].to_numpy())
            cov_of["distance"] = "distance"
        w_after = d["match_weight"].to_numpy()
        ate = self.params["estimand"] == "ATE"
        rows = []
        Xv = X.to_numpy()
        for j, term in enumerate(X.columns):
            x = Xv[:, j]
            binary = term != "distance" and set(np.unique(x)) <= {0.0, 1.0}
            sd = _sd(x[focal], binary)
            if ate:  # MatchIt (cobalt) for the ATE: the root of the mean of the two groups' variances
                sd = math.sqrt((sd**2 + _sd(x[~focal], binary) ** 2) / 2)
            for sample, w in (("before", np.ones(len(x))), ("after", w_after)):
                wt, wc = w[focal], w[~focal]
                xt, xc = x[focal], x[~focal]
                mt, mc = np.average(xt, weights=wt), np.average(xc, weights=wc)
                vr = np.nan if binary else _wvar(xt, wt) / _wvar(xc, wc)
                rows.append(
                    {
                        "term": term,
                        "covariate": cov_of[term],
                        "kind": "binary" if binary else "continuous",
                        "sample": sample,
                        "mean_treated": mt,
                        "mean_control": mc,
                        "smd": (mt - mc) / sd if sd > 0 else np.nan,
                        "var_ratio": vr,
                        "ecdf_max": _ecdf_max(xt, wt, xc, wc),
                    }
                )
        return pd.DataFrame(rows)

    def plot_balance(
        self, ax: Any = None, threshold: float = 0.1, exclude: Sequence[str] = (), counts: Any = None
    ) -> Any:
        """Love plot: absolute standardised mean differences before and after matching.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.
        threshold : float
            The dashed line (0.1: the usual bound of good balance).
        exclude : list of str
            Balance terms to leave out, e.g. levels held by too few people to publish
            (statistical disclosure control).
        counts : dict, optional
            Group sizes to record on the figure for the disclosure check.

        Returns
        -------
        matplotlib.figure.Figure
            Drawn by :func:`evaluator.plots.matching.balance_plot`.
        """
        from evaluator.plots.matching import balance_plot  # lazily: matplotlib loads only to draw

        return balance_plot(self.balance(), ax=ax, threshold=threshold, exclude=exclude, counts=counts)

    def plot_overlap(self, ax: Any = None, bins: int = 30, min_cell: int | None = None) -> Any:
        """Distributions of the propensity score (or the matching distance score) by group, before and after.

        Bins with fewer than ``min_cell`` people in a group are merged with their
        neighbours (default :data:`evaluator.policy.MIN_CELL`).

        Returns
        -------
        matplotlib.figure.Figure
            Drawn by :func:`evaluator.plots.matching.overlap_plot`.
        """
        d = self.data
        if "pscore" not in d.columns:
            raise DesignError("no propensity score was fitted (Mahalanobis matching); plot_overlap needs one")
        from evaluator.plots.matching import overlap_plot  # lazily: matplotlib loads only to draw
        from evaluator.policy import MIN_CELL

        return overlap_plot(
            d["pscore"].to_numpy(),
            self._focal_mask(),
            d["match_weight"].to_numpy(),
            ax=ax,
            bins=bins,
            min_cell=MIN_CELL if min_cell is None else min_cell,
        )

    def __repr__(self) -> str:
        c = self.info["counts"]
        back = (
            f", {c['controls_matched']} of {c['controls']} controls to {c['treated_used']} treated"
            if self.params["estimand"] == "ATE"
            else ""
        )
        return (
            f"<MatchResult {self.params['method']}: {c['treated_matched']} of {c['treated']} treated matched "
            f"to {c['controls_used']} controls{back}>"
        )

    # -- effects ---------------------------------------------------------------------
    def effect(
        self,
        outcome: str,
        *,
        adjust: Sequence[str] | None = None,
        inference: Inference | None = None,
        alpha: float = 0.05,
        n_boot: int = 499,
        seed: int | None = None,
        ai_neighbours: int = 2,
    ) -> Result:
        """Effect on the treated (ATT), the controls (ATC) or everyone matched (ATE) in the matched sample.

        Parameters
        ----------
        outcome : str
            Outcome column (numeric).
        adjust : list of str, optional
            Covariates for regression adjustment. ``"pairs"`` and ``"bootstrap"``:
            the coefficient on treatment in a weighted least-squares regression
            of the outcome on treatment and these covariates in the matched sample
            (without: the weighted difference in means). ``"abadie_imbens"``: the
            covariates of the bias-correction regression (Abadie and Imbens 2011,
            Stata ``teffects nnmatch, biasadj()``); ``None`` (the default) uses the
            matching covariates and an empty list ``[]`` turns the correction off
            (the simple matching estimator, ``teffects nnmatch`` without ``biasadj()``).
        inference : {"pairs", "abadie_imbens", "bootstrap"}, optional
            Default ``"pairs"`` for the ATT and the ATC, ``"abadie_imbens"`` for
            the ATE. ``"pairs"``: cluster-robust SE clustered on the matched set, CR1
            (``G/(G-1) * (N-1)/(N-K)``, as R ``sandwich::vcovCL``), normal
            critical values; this is MatchIt's recommended SE after matching
            without replacement. With replacement the long-form sample is used and
            the SE ignores that controls recur across sets (use
            ``"abadie_imbens"``; for the ATE, where every unit is also a match in
            other units' sets, the pairs SE is far too small).
            ``"abadie_imbens"``: the (bias-corrected) matching estimator and the
            Abadie-Imbens (2006) robust variance of the population effect. Each
            matched set s has a focal unit (the treated unit for the ATT, the
            control for the ATC, either for the ATE) whose missing potential
            outcome is the weighted mean of its matches' outcomes, each corrected
            by ``mu(X_focal) - mu(X_match)``; ``tau_s`` is the treated minus the
            control outcome and the estimate their mean over the N sets. With
            ``K_i`` the total weight of unit i as a match and ``K'_i`` the sum of
            its squared weights, the variance is
            ``(1/N^2) [sum_s (tau_s - tau)^2 + sum_i (K_i^2 - K'_i + 2 K_i f_i) sigma2_i]``
            with ``f_i = 1`` for focal units: for the ATT (no focal unit is a
            match) the AI (2006) PATT variance, for the ATE their PATE variance
            ``sum_i ((1 + K_i)^2 - (1 + K'_i)) sigma2_i``, as Stata's
            ``teffects nnmatch, vce(robust, nn(J))`` writes it (``K'_i = K_i / M``
            without ties). The conditional variances ``sigma2_i`` are estimated by
            matching unit i to its ``ai_neighbours`` (J) nearest other units of the
            same treatment group (same distance as the match: score, or whitened
            covariates; ties among them broken by the k-d tree, and exact strata
            not respected) and taking ``J/(J+1) (Y_i - mean of their Y)^2``. The
            bias correction ``mu`` is, for each group whose units serve as matches,
            a linear regression of the outcome on ``adjust`` among that group's
            units used as matches, weighted by ``K_i`` (controls for the ATT,
            treated for the ATC, both groups for the ATE).
            ``"bootstrap"``: units are resampled within the
            treated and control groups, the propensity model and the match are
            re-run ``n_boot`` times; the SE is the SD of the estimates, the
            interval normal (the percentile interval is in ``info``). Note that
            the bootstrap is not valid for matching with replacement
            (Abadie and Imbens 2008), so not for the ATE.
        alpha : float
            1 - confidence level.
        n_boot, seed
            Bootstrap replications and seed.
        ai_neighbours : int
            J, the number of same-group neighbours for the Abadie-Imbens
            conditional variances (1 or 2 are usual; 2 by default, as ``teffects``).

        Returns
        -------
        Result
            Term ``"att"``, ``"atc"`` or ``"ate"``. ``info``: ``n_treated``,
            ``n_control`` (distinct controls used; for the ATE the controls matched,
            so that ``n_treated + n_control`` is the number of units averaged over),
            ``n_sets`` (clusters); for ``"abadie_imbens"`` ``bias_correction``
            (the outcome model's coefficients; for the ATE one per group,
            ``{"mu0": ..., "mu1": ...}``; ``None`` when turned off); for the
            bootstrap ``boot_estimates``, ``percentile_ci``, ``n_boot_failed``.

        Examples
        --------
        >>> from evaluator.data.simulate import employment_sib
        >>> from evaluator.estimators.matching import match
        >>> sim = employment_sib(n_treated=60, n_pool=600, seed=2)
        >>> m = match(sim.data, treat="treated", covariates=sim.columns["covariates"])
        >>> r = m.effect("employed_12m")
        >>> r.table["term"].tolist(), r.nobs
        (['att'], 120)

        The average effect over everyone (ATE), with an effect that grows with ``x``,
        so that it differs from the effect on the treated (who have larger ``x``):
        both groups are matched to each other, with replacement, 2 matches each.

        >>> import numpy as np
        >>> import pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=400)
        >>> t = (rng.random(400) < 1 / (1 + np.exp(-x))).astype(int)
        >>> y = x + t * (1 + x) + rng.normal(size=400)  # true ATE 1, ATT 1.41
        >>> df = pd.DataFrame({"t": t, "x": x, "y": y})
        >>> ate = match(df, treat="t", covariates=["x"], distance="mahalanobis", ratio=2, replace=True, estimand="ATE")
        >>> r = ate.effect("y")  # Abadie-Imbens, bias-corrected on x
        >>> r.table["term"].tolist(), r.info["n_treated"] + r.info["n_control"]
        (['ate'], 400)
        >>> round(r.estimate, 3), round(r.se, 3)
        (1.041, 0.116)
        >>> simple = ate.effect("y", adjust=[])  # without the bias correction
        >>> round(simple.estimate, 3), round(simple.se, 3)
        (1.098, 0.115)
        >>> att = match(df, treat="t", covariates=["x"], distance="mahalanobis", ratio=2, replace=True)
        >>> round(att.effect("y", inference="abadie_imbens").estimate, 3)  # the effect on the treated
        1.489
        """
        one_column(outcome=outcome)
        estimand = self.params["estimand"]
        if inference is None:
            inference = "abadie_imbens" if estimand == "ATE" else "pairs"
        choice("inference", inference, _INFERENCES)
        d = self.data
        # None: the default (for abadie_imbens, bias correction on the matching covariates); [] : no adjustment
        bias_cov = list(self.covariates) if adjust is None else as_list(adjust)
        adjust = as_list(adjust)
        _check_columns(d, self.treat, list(adjust), outcome)
        if int(ai_neighbours) < 1:
            raise ValueError(f"ai_neighbours={ai_neighbours!r} must be a positive whole number")
        term = estimand.lower()
        counts = self.info["counts"]
        info: dict[str, Any] = {
            "n_treated": counts["treated_matched"],
            "n_control": counts["controls_matched"] if estimand == "ATE" else counts["controls_used"],
            "n_sets": counts["matched_sets"],
        }
        notes: list[str] = []
        groups = [("treated", "treated_matched")] + ([("controls", "controls_matched")] if estimand == "ATE" else [])
        for group, matched in groups:
            if counts[matched] < counts[group]:
                whom = "units" if estimand == "ATE" else "treated"
                notes.append(
                    f"{counts[group] - counts[matched]} of {counts[group]} {group.rstrip('s')} units were not "
                    f"matched (caliper, common support or pool); the estimate is for the matched {whom} only"
                )
        method = self.params["method"]
        if inference == "pairs":
            est, se, nobs = _pairs_estimate(self, outcome, adjust)
            info["n_clusters"] = counts["matched_sets"]
            how = "cluster-robust (CR1) on matched set, normal critical values"
            if estimand == "ATE":
                notes.append(
                    "pairs SEs are not valid for the ATE: every unit is also a match in other units' sets, which "
                    "clustering on the set ignores; use inference='abadie_imbens' (the ATE's default)"
                )
            elif self.params["replace"]:
                notes.append("pairs SEs with replacement ignore that controls recur across sets; see abadie_imbens")
        elif inference == "abadie_imbens":
            est, se, nobs, extra = _abadie_imbens(self, outcome, bias_cov, int(ai_neighbours))
            info.update(extra)
            corrected = "bias-corrected" if bias_cov else "not bias-corrected"
            how = f"Abadie-Imbens (2006) population variance, {corrected}, J={int(ai_neighbours)}"
        else:
            est, _, nobs = _pairs_estimate(self, outcome, adjust)
            boots, failed = _bootstrap(self, outcome, adjust, n_boot, seed)
            if len(boots) < 2:
                raise DesignError(f"only {len(boots)} of {n_boot} bootstrap replications could be matched")
            se = float(np.std(boots, ddof=1))
            info.update(
                boot_estimates=boots,
                percentile_ci=tuple(np.quantile(boots, [alpha / 2, 1 - alpha / 2]).tolist()),
                n_boot=len(boots),
                n_boot_failed=failed,
            )
            how = f"bootstrap ({len(boots)} replications re-running the propensity model and the match), normal CI"
            if failed:
                notes.append(f"{failed} bootstrap replications failed to match and were left out")
            if self.params["replace"]:
                notes.append("the bootstrap is not valid for matching with replacement (Abadie and Imbens 2008)")
        table = tidy_table([term], [est], [se], alpha=alpha)
        return Result(
            estimator=f"Matched comparison ({method}), {self.params['estimand']}",
            table=table,
            nobs=int(nobs),
            alpha=alpha,
            inference=how,
            outcome=outcome,
            notes=tuple(notes),
            info=info,
        )


def _sd(x: np.ndarray, binary: bool) -> float:
    """SD of a covariate in one group: ``sqrt(p(1-p))`` for a binary one, else the sample SD."""
    return math.sqrt(x.mean() * (1 - x.mean())) if binary else float(x.std(ddof=1))


def _wvar(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted variance with reliability-weight correction (n - 1 when all weights are 1)."""
    sw = w.sum()
    m = np.sum(w * x) / sw
    return float(np.sum(w * (x - m) ** 2) / (sw - np.sum(w**2) / sw))


def _ecdf_max(xt: np.ndarray, wt: np.ndarray, xc: np.ndarray, wc: np.ndarray) -> float:
    """Largest absolute difference between the (weighted) empirical CDFs."""
    keep_t, keep_c = wt > 0, wc > 0
    xt, wt, xc, wc = xt[keep_t], wt[keep_t], xc[keep_c], wc[keep_c]
    x = np.r_[xt, xc]
    wt_all = np.r_[wt / wt.sum(), np.zeros(len(xc))]
    wc_all = np.r_[np.zeros(len(xt)), wc / wc.sum()]
    o = np.argsort(x, kind="stable")
    x, ft, fc = x[o], np.cumsum(wt_all[o]), np.cumsum(wc_all[o])
    last = np.r_[x[1:] != x[:-1], True]
    return float(np.max(np.abs(ft[last] - fc[last])))
