"""The propensity score of matching and weighting (the package logit) and Mahalanobis whitening."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from evaluator.errors import DataError, DesignError, Problem
from evaluator.estimators.logit import fit_logit, separated, separation_culprits
from evaluator.estimators.matching.frame import _design_array


def _full_formula(ps_formula: str, treat: str) -> str:
    """``"y ~ x"`` as given; ``"~ x"`` or ``"x"`` get the treatment column as left-hand side."""
    if "~" not in ps_formula:
        return f"{treat} ~ {ps_formula}"
    lhs, rhs = ps_formula.split("~", 1)
    return ps_formula if lhs.strip() else f"{treat} ~ {rhs}"


def _propensity(
    frame: pd.DataFrame, t: np.ndarray, treat: str, covariates: Sequence[str], ps_formula: str | None
) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """Propensity score P(treat = 1 | X) from a maximum-likelihood logit (in key order), its info and design.

    The fit is the package's Newton-Raphson (:func:`evaluator.estimators.logit.fit_logit`); it
    reaches the same maximum as statsmodels ``Logit.fit(method="newton")`` (the tests check this
    to 1e-8) in a fraction of the time at register scale. With ``ps_formula`` the design matrix is the formula's.
    """
    if ps_formula is not None:
        import statsmodels.formula.api as smf

        formula = _full_formula(ps_formula, treat)
        fdata = frame.copy()
        fdata[treat] = t  # the model is for membership of the focal group's complement-invariant score
        model = smf.logit(formula, data=fdata)
        names = list(model.exog_names)
        X = np.asarray(model.exog, dtype=float)
        y = np.asarray(model.endog, dtype=float)
        if len(X) != len(frame):
            raise DataError(
                [
                    Problem(
                        f"the propensity formula dropped {len(frame) - len(X)} rows with missing values",
                        where=f"ps_formula={ps_formula!r}",
                        hint="impute or drop the rows with missing values in the formula's variables first",
                    )
                ]
            )
    else:
        names, X = _design_array(frame, covariates, const=True)
        flat = X.min(axis=0) == X.max(axis=0)
        const = [c for c, f in zip(names[1:], flat[1:], strict=True) if f]
        if const:
            raise DesignError(
                f"covariate column(s) {const} are constant, so the propensity model cannot be fitted; "
                "drop them from covariates"
            )
        y = t.astype(float)
    XtX = X.T @ X
    sv = np.linalg.svd(XtX, compute_uv=False)
    if sv[-1] <= sv[0] * 1e-12:
        raise DesignError(
            "the propensity model's covariates are collinear (one is a combination of others); "
            f"design columns: {names}. Fix: drop redundant covariates"
        )
    intercept = next((j for j, c in enumerate(names) if c in ("const", "Intercept")), None)
    slopes = [j for j in range(len(names)) if j != intercept]
    # the slope columns as a view when the intercept comes first (as _design_array puts it): a
    # register-scale design is not copied just to look at its columns
    columns = X[:, 1:] if intercept == 0 else X[:, slopes]
    culprits = separation_culprits(columns, [names[j] for j in slopes], t)
    if culprits:
        raise DesignError(
            "perfect separation in the propensity model: "
            + "; ".join(culprits)
            + ". Units there have a propensity of 0 or 1 and cannot be matched. Fix: drop or merge that level, "
            "restrict the sample to the region of overlap, or match exactly on that covariate with exact=."
        )
    separation = DesignError(
        "perfect separation in the propensity model: a combination of covariates predicts treatment exactly. "
        "Fix: simplify the covariates or restrict the sample to the region of overlap."
    )
    try:
        fit = fit_logit(X, y, intercept=intercept, XtX=XtX)
    except np.linalg.LinAlgError as err:
        raise DesignError(
            f"the propensity model could not be fitted ({err}); a combination of covariates separates treated "
            "from controls or they are collinear. Fix: simplify covariates or pass ps_formula="
        ) from err
    beta = fit.params
    ps = fit.predict(X)
    # a diverging fit drives some scores to exactly 0 or 1 (quasi-separation) or all of them to the
    # treatment itself (complete separation, statsmodels' test)
    if separated(fit, ps, y):
        raise separation
    info: dict[str, Any] = {"ps_params": dict(zip(names, beta.tolist(), strict=True))}
    if not fit.converged:
        info["ps_warning"] = "the propensity model did not converge"
    return ps, info, X


def _fit_ps(
    frame: pd.DataFrame, t: np.ndarray, treat: str, covariates: Sequence[str], ps_formula: str | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Propensity score P(treat = 1 | X) from a logit (in key order) and its info (see :func:`_propensity`)."""
    ps, info, _ = _propensity(frame, t, treat, covariates, ps_formula)
    return ps, info


def _whiten(Xd: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Covariates times the inverse Cholesky factor of the pooled within-group covariance."""
    Xt, Xc = Xd[t == 1], Xd[t == 0]
    nt, nc = len(Xt), len(Xc)
    S = ((nt - 1) * np.cov(Xt, rowvar=False, ddof=1).reshape(Xd.shape[1], -1) if nt > 1 else 0) + (
        (nc - 1) * np.cov(Xc, rowvar=False, ddof=1).reshape(Xd.shape[1], -1)
    )
    S = np.atleast_2d(S / max(nt + nc - 2, 1))
    try:
        L = np.linalg.cholesky(S)
        return linalg.solve_triangular(L, Xd.T, lower=True).T
    except np.linalg.LinAlgError:  # singular: whiten on the non-null eigen-space (a pseudo-inverse)
        vals, vecs = np.linalg.eigh(S)
        keep = vals > vals.max() * 1e-10
        return (Xd @ vecs[:, keep]) / np.sqrt(vals[keep])
