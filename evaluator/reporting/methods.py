"""The method in plain words: what the page says about how the estimate was computed, and its parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluator.reporting.html import labels
from evaluator.reporting.pipeline import DidFit, MatchedFit

__all__ = ["display_parameters", "method_words", "shown_path"]


def method_words(fit: DidFit | MatchedFit) -> dict[str, str]:
    """The estimator and the inference in plain words (``estimator``, ``inference``), for readers of the page.

    Examples
    --------
    >>> from evaluator.reporting.html import labels
    >>> str(labels().inference_words("wild", 999, 20, "municipality"))
    'wild cluster bootstrap over the 20 clusters (municipality), 999 draws'

    The estimators' own descriptions (``result.inference``) name options and
    internals; the page says what was done, and the glossary explains the terms.
    """
    s = fit.settings
    words = labels()
    if isinstance(fit, DidFit):
        n_boot = s.n_boot if s.inference in ("bootstrap", "wild") else 0
        control = "never" if s.control_group == "never" else "not_yet"
        estimator = words.estimator_words(s.estimator, control, bool(s.covariates))
    else:
        n_boot = s.n_boot if s.inference == "bootstrap" else 0
        estimator = words.estimator_words("matching", s.distance, bool(s.adjust))
    cluster = (s.cluster or s.unit) if isinstance(fit, DidFit) else ""
    inference = words.inference_words(s.inference, n_boot, fit.n_clusters or 0, cluster)
    return {"estimator": str(estimator).strip(), "inference": str(inference).strip()}


def shown_path(value: Any) -> Any:
    """A path as the page shows it: the file's name (bundled data by name), never the machine's folders.

    >>> shown_path("/home/me/data/panel.csv"), shown_path("bundled:sick_leave_sib")
    ('panel.csv', 'bundled:sick_leave_sib')
    """
    text = str(value)
    if not text or text.startswith("bundled:") or ("/" not in text and "\\" not in text):
        return value
    return Path(text).name


def display_parameters(settings: Any) -> dict[str, Any]:
    """The parameters as the page and ``results.json`` show them: file paths reduced to the file's name."""
    out = dict(settings.as_dict())
    for key in ("data_path", "contract_path"):
        if key in out:
            out[key] = shown_path(out[key])
    return out
