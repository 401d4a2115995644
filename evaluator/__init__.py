"""evaluator: did a social intervention work, and what is that worth?

Data flow::

    file --data.load_panel / load_individuals-->  validated frame
         --estimators (did, staggered_did, match)--> result (tidy table)
         --plots / result.summary()-->              figures and tables
         --contracts (settle, economics)-->         payments owed, socio-economic return
         --reporting chapters + notebooks-->        report notebook
         --runner (run_report, batch)-->            HTML reports, reports/index.html

Two halves, each layer importing only those below it (``docs/architecture.md``):

- the application: ``cli`` (the ``evaluator`` command) > ``runner`` (run notebooks, batches,
  reproduce) > ``reporting`` (one module per report chapter, disclosure control) > ``contracts``
  (terms, settlement, socio-economic return, power);
- the statistics library: ``estimators`` (``did``, ``staggered_did``, ``match``) > ``data``
  (read, validate, simulate, bundled data) and ``results`` (the one result face) > ``plots``
  (figures) > ``inference`` (covariance kernels and bootstraps on arrays);
- the foundations: ``errors``, ``policy`` (shared thresholds), ``formatting`` (numbers for
  readers), ``files`` (atomic writes, JSON), ``provenance`` (versions, commit, time);
  beneath them ``i18n``, the reader's language (English, Danish, Swedish, Finnish) and its catalogs.

The names below are loaded on first use, so ``import evaluator`` is cheap and
``evaluator --help`` starts fast.

Examples
--------
>>> import evaluator
>>> sim = evaluator.simulate.sick_leave_sib(seed=1, n_municipalities=6, employees_per_municipality=20)
>>> fit = evaluator.did(sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated")
>>> round(fit.estimate, 1) < 0
True
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it (loaded on first access).
_NAMES: dict[str, str] = {
    # data
    "load_panel": "evaluator.data.load",
    "load_individuals": "evaluator.data.load",
    "load_cross_sections": "evaluator.data.load",
    "attrition_table": "evaluator.data.load",
    "read_schema": "evaluator.data.load",
    # estimators
    "did": "evaluator.estimators.twfe",
    "event_study": "evaluator.estimators.twfe",
    "staggered_did": "evaluator.estimators.staggered",
    "StaggeredResult": "evaluator.estimators.staggered",
    "honest_did": "evaluator.estimators.honest",
    "HonestResult": "evaluator.estimators.honest",
    "synthetic": "evaluator.estimators.synthetic",
    "SyntheticResult": "evaluator.estimators.synthetic",
    "placebo_in_time": "evaluator.estimators.synthetic",
    "match": "evaluator.estimators.matching",
    "MatchResult": "evaluator.estimators.matching",
    "matched_did": "evaluator.estimators.matching",
    "weighting": "evaluator.estimators.matching",
    # results
    "Result": "evaluator.results.base",
    "TIDY_COLUMNS": "evaluator.results.base",
    "tidy_table": "evaluator.results.base",
    # contracts and money
    "Contract": "evaluator.contracts.terms",
    "Settlement": "evaluator.contracts.settlement",
    "settle": "evaluator.contracts.settlement",
    "SocioEconomicReturn": "evaluator.contracts.economics",
    "socio_economic_return": "evaluator.contracts.economics",
    "power": "evaluator.contracts.power",
    "minimum_detectable_effect": "evaluator.contracts.power",
    "mde_from_design": "evaluator.contracts.power",
    # reporting
    "disclosure_check": "evaluator.reporting.disclosure",
    # errors and warnings
    "ContractError": "evaluator.errors",
    "DataError": "evaluator.errors",
    "DesignError": "evaluator.errors",
    "ParameterError": "evaluator.errors",
    "DroppedUnitsWarning": "evaluator.errors",
    "EvaluatorError": "evaluator.errors",
    "EvaluatorWarning": "evaluator.errors",
    "FewClustersWarning": "evaluator.errors",
    "MissingPeriodWarning": "evaluator.errors",
    "SmallCohortWarning": "evaluator.errors",
    "TrimmingWarning": "evaluator.errors",
    "UnbalancedPanelError": "evaluator.errors",
    "WeightsError": "evaluator.errors",
}

#: Module names reachable as attributes (``evaluator.simulate.sick_leave_sib``).
_MODULES: dict[str, str] = {
    "data": "evaluator.data",
    "estimators": "evaluator.estimators",
    "inference": "evaluator.inference",
    "results": "evaluator.results",
    "plots": "evaluator.plots",
    "contracts": "evaluator.contracts",
    "reporting": "evaluator.reporting",
    "runner": "evaluator.runner",
    "errors": "evaluator.errors",
    "policy": "evaluator.policy",
    "i18n": "evaluator.i18n",
    "simulate": "evaluator.data.simulate",
    "datasets": "evaluator.data.datasets",
    "matching": "evaluator.estimators.matching",
    "economics": "evaluator.contracts.economics",
    "disclosure": "evaluator.reporting.disclosure",
}

#: Round-1 module names, kept working for old notebooks.
_RENAMED: dict[str, str] = {
    "sections": "evaluator.reporting",
    "report": "evaluator.runner",
    "batch": "evaluator.runner.batch",
}

__all__ = [
    "Contract",
    "ContractError",
    "DataError",
    "DesignError",
    "DroppedUnitsWarning",
    "EvaluatorError",
    "EvaluatorWarning",
    "FewClustersWarning",
    "HonestResult",
    "MatchResult",
    "MissingPeriodWarning",
    "ParameterError",
    "Result",
    "Settlement",
    "SmallCohortWarning",
    "SocioEconomicReturn",
    "StaggeredResult",
    "SyntheticResult",
    "TIDY_COLUMNS",
    "TrimmingWarning",
    "UnbalancedPanelError",
    "WeightsError",
    "__version__",
    "contracts",
    "data",
    "datasets",
    "did",
    "disclosure",
    "disclosure_check",
    "economics",
    "errors",
    "estimators",
    "event_study",
    "honest_did",
    "inference",
    "attrition_table",
    "load_cross_sections",
    "load_individuals",
    "load_panel",
    "match",
    "matched_did",
    "matching",
    "mde_from_design",
    "minimum_detectable_effect",
    "placebo_in_time",
    "plots",
    "policy",
    "power",
    "read_schema",
    "reporting",
    "results",
    "runner",
    "settle",
    "simulate",
    "socio_economic_return",
    "staggered_did",
    "synthetic",
    "tidy_table",
    "weighting",
]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _RENAMED:
        warnings.warn(
            f"evaluator.{name} is now {_RENAMED[name]}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(_RENAMED[name])
    else:
        raise AttributeError(f"module 'evaluator' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; nothing is imported at run time
    from evaluator import contracts, data, estimators, inference, plots, reporting, results, runner
    from evaluator.contracts.economics import SocioEconomicReturn, socio_economic_return
    from evaluator.contracts.power import mde_from_design, minimum_detectable_effect, power
    from evaluator.contracts.settlement import Settlement, settle
    from evaluator.contracts.terms import Contract
    from evaluator.data.load import (
        attrition_table,
        load_cross_sections,
        load_individuals,
        load_panel,
        read_schema,
    )
    from evaluator.errors import (
        ContractError,
        DataError,
        DesignError,
        DroppedUnitsWarning,
        EvaluatorError,
        EvaluatorWarning,
        FewClustersWarning,
        MissingPeriodWarning,
        ParameterError,
        SmallCohortWarning,
        TrimmingWarning,
        UnbalancedPanelError,
        WeightsError,
    )
    from evaluator.estimators.honest import HonestResult, honest_did
    from evaluator.estimators.matching import MatchResult, match, matched_did, weighting
    from evaluator.estimators.staggered import StaggeredResult, staggered_did
    from evaluator.estimators.synthetic import SyntheticResult, placebo_in_time, synthetic
    from evaluator.estimators.twfe import did, event_study
    from evaluator.reporting.disclosure import disclosure_check
    from evaluator.results.base import TIDY_COLUMNS, Result, tidy_table
