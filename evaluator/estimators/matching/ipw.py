""":func:`weighting`: inverse-probability weighting, optionally doubly robust (AIPW)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from evaluator.errors import DesignError, TrimmingWarning
from evaluator.estimators.design import as_list, choice, one_column
from evaluator.estimators.matching.frame import _canonical, _check_columns, _design_array
from evaluator.estimators.matching.propensity import _propensity
from evaluator.results.base import Result, tidy_table

__all__ = ["weighting"]


def _num_jacobian(fun: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of the mean estimating function."""
    k = len(theta)
    J = np.empty((k, k))
    for j in range(k):
        h = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = h
        J[:, j] = (fun(theta + e).mean(axis=0) - fun(theta - e).mean(axis=0)) / (2 * h)
    return J


def weighting(
    data: pd.DataFrame,
    *,
    treat: str,
    outcome: str,
    covariates: Sequence[str] | None = None,
    ps_formula: str | None = None,
    estimand: Literal["ATT", "ATE"] = "ATT",
    method: Literal["ipw", "aipw"] = "ipw",
    trim: float | None = None,
    alpha: float = 0.05,
) -> Result:
    """Inverse-probability weighting (normalised) or augmented IPW, with M-estimation SEs.

    The propensity score is a logistic regression as in :func:`match`. ``"ipw"``
    compares the treated mean with the control mean weighted by ``e/(1-e)``
    (ATT) or both arms weighted by ``1/e`` and ``1/(1-e)`` (ATE), weights
    normalised to sum to one in each arm (Hajek). ``"aipw"`` adds linear outcome
    regressions on the covariates (per arm), which makes the estimate doubly
    robust. Standard errors come from the sandwich of the stacked estimating
    equations (propensity model, outcome models and means), so the uncertainty of
    the estimated score is included; the Jacobian is taken by central differences.

    Parameters
    ----------
    data : pandas.DataFrame
    treat, outcome : str
        Treatment (0/1) and outcome columns.
    covariates : list of str, optional
        Covariates of the propensity (and outcome) models.
    ps_formula : str, optional
        statsmodels formula for the propensity model instead.
    estimand : {"ATT", "ATE"}
    method : {"ipw", "aipw"}
    trim : float, optional
        Drop units with a propensity score outside ``[trim, 1 - trim]`` (the
        model is refitted on the rest), with a :class:`TrimmingWarning`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    Result
        Term ``"att"`` or ``"ate"``; ``info``: ``n_treated``, ``n_control``,
        ``n_trimmed``, ``effective_n_control`` (Kish).

    Examples
    --------
    >>> from evaluator.data.simulate import employment_sib
    >>> sim = employment_sib(n_treated=200, n_pool=2_000, seed=4)
    >>> r = weighting(sim.data, treat="treated", outcome="employed_12m", covariates=sim.columns["covariates"])
    >>> r.table["term"].tolist(), r.nobs
    (['att'], 2200)
    """
    one_column(treat=treat, outcome=outcome)
    choice("estimand", estimand, ("ATT", "ATE"))
    choice("method", method, ("ipw", "aipw"))
    if trim is not None and not (0 < trim < 0.5):
        raise ValueError(f"trim={trim!r} is not allowed; use a number in (0, 0.5) or None")
    covariates = as_list(covariates)
    if not covariates and ps_formula is None:
        raise ValueError("covariates=None is not allowed without ps_formula; name the covariates")
    _check_columns(data, treat, covariates, outcome)
    df, _ = _canonical(data.reset_index(drop=True), None)
    t = df[treat].to_numpy().astype(np.int64)
    if t.sum() < 2 or (1 - t).sum() < 2:
        raise DesignError(f"weighting needs at least 2 treated and 2 control units in '{treat}'")
    n_trim = 0
    ps, ps_info, Xp = _propensity(df, t, treat, covariates, ps_formula)
    if trim is not None:
        keep = (ps >= trim) & (ps <= 1 - trim)
        n_trim = int((~keep).sum())
        if n_trim:
            warnings.warn(
                f"trimmed {n_trim} units ({int((~keep & (t == 1)).sum())} treated) with a propensity score outside "
                f"[{trim}, {1 - trim}]; the estimand is for the remaining units",
                TrimmingWarning,
                stacklevel=2,
            )
            df, t = df[keep], t[keep]
            # refit on the units kept (with nothing trimmed, the first fit is the one)
            ps, ps_info, Xp = _propensity(df, t, treat, covariates, ps_formula)
    gamma = np.asarray(list(ps_info["ps_params"].values()))
    y = df[outcome].to_numpy(dtype=float)
    # without a formula the outcome models use the propensity model's design (intercept + covariates)
    Xo = Xp if ps_formula is None or not covariates else _design_array(df, covariates, const=True)[1]
    kp, ko = Xp.shape[1], Xo.shape[1]
    tt = t.astype(float)

    def e_of(g: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(Xp @ g)))

    def ols(mask: np.ndarray) -> np.ndarray:
        return np.linalg.lstsq(Xo[mask], y[mask], rcond=None)[0]

    if method == "aipw":
        b1 = ols(t == 1)
        b0 = ols(t == 0)
    else:
        b1 = b0 = np.zeros(0)

    def psi(theta: np.ndarray) -> np.ndarray:
        g = theta[:kp]
        e = e_of(g)
        cols = [Xp * (tt - e)[:, None]]
        i = kp
        if method == "aipw":
            c1, c0 = theta[i : i + ko], theta[i + ko : i + 2 * ko]
            i += 2 * ko
            m1, m0 = Xo @ c1, Xo @ c0
            cols += [Xo * (tt * (y - m1))[:, None], Xo * ((1 - tt) * (y - m0))[:, None]]
        else:
            m1 = m0 = np.zeros(len(y))
        mu1, mu0 = theta[i], theta[i + 1]
        if estimand == "ATT":
            odds = e / (1 - e)
            cols += [(tt * (y - m0 - mu1))[:, None], ((1 - tt) * odds * (y - m0 - mu0))[:, None]]
        elif method == "ipw":
            cols += [(tt / e * (y - mu1))[:, None], ((1 - tt) / (1 - e) * (y - mu0))[:, None]]
        else:
            cols += [
                (m1 + tt / e * (y - m1) - mu1)[:, None],
                (m0 + (1 - tt) / (1 - e) * (y - m0) - mu0)[:, None],
            ]
        return np.column_stack(cols)

    # point estimates of the means (closed forms of the estimating equations)
    e = ps
    m1, m0 = (Xo @ b1, Xo @ b0) if method == "aipw" else (np.zeros(len(y)), np.zeros(len(y)))
    if estimand == "ATT":
        odds = e / (1 - e)
        mu1 = np.sum(tt * (y - m0)) / tt.sum()
        mu0 = np.sum((1 - tt) * odds * (y - m0)) / np.sum((1 - tt) * odds)
        wc = (1 - tt) * odds
    elif method == "ipw":
        mu1 = np.sum(tt / e * y) / np.sum(tt / e)
        mu0 = np.sum((1 - tt) / (1 - e) * y) / np.sum((1 - tt) / (1 - e))
        wc = (1 - tt) / (1 - e)
    else:
        mu1 = np.mean(m1 + tt / e * (y - m1))
        mu0 = np.mean(m0 + (1 - tt) / (1 - e) * (y - m0))
        wc = (1 - tt) / (1 - e)
    theta = np.r_[gamma, b1, b0, mu1, mu0]
    n = len(y)
    A = _num_jacobian(psi, theta)
    P = psi(theta)
    B = P.T @ P / n
    Ainv = np.linalg.pinv(A)
    V = Ainv @ B @ Ainv.T / n
    grad = np.zeros(len(theta))
    grad[-2], grad[-1] = 1.0, -1.0
    est = float(mu1 - mu0)
    se = float(math.sqrt(grad @ V @ grad))
    term = estimand.lower()
    ess = float(wc.sum() ** 2 / np.sum(wc**2))
    notes = []
    if ps.min() < 0.01 or ps.max() > 0.99:
        notes.append("some propensity scores lie outside [0.01, 0.99]; weights may be extreme (consider trim=)")
    return Result(
        estimator=f"{'Augmented inverse' if method == 'aipw' else 'Inverse'}-probability weighting, {estimand}",
        table=tidy_table([term], [est], [se], alpha=alpha),
        nobs=n,
        alpha=alpha,
        inference="M-estimation sandwich (stacked propensity, outcome and mean equations), normal critical values",
        outcome=outcome,
        notes=tuple(notes),
        info={
            "n_treated": int(t.sum()),
            "n_control": int((1 - t).sum()),
            "n_trimmed": n_trim,
            "effective_n_control": ess,
        },
    )
