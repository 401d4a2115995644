"""evaluator: did a social intervention work, and what is that worth?

Data flow::

    file --data.load_panel / load_individuals--> validated frame
         --did / staggered_did / event_study-->   Result (tidy table)
         --plots / Result.summary-->              figures and tables
         --contracts.settle / economics-->        payments owed, socio-economic return
         --notebooks + report / batch-->          HTML reports, reports/index.html

Modules, one idea each:

- ``data``: read CSV/Parquet and validate against ``data_schemas/`` (all problems in one error).
- ``simulate``: synthetic outcome-contract data with a known truth.
- ``did``: ``did`` (2x2, two-way fixed effects) and ``event_study``.
- ``staggered``: ``staggered_did``, Callaway and Sant'Anna (2021) group-time effects and aggregations.
- ``inference``: covariance and bootstrap functions (numbers in, numbers out).
- ``matching``: nearest-neighbour matching, balance, inverse-probability weighting.
- ``plots``: figures from results and data.
- ``results``: the one result family (tidy table, summary, HTML, plot).
- ``errors``: ``DataError``, ``DesignError``, ``ContractError`` and the warnings.
- ``power``: minimum detectable effects and the chance of crossing a contract threshold.
- ``contracts``: outcome contracts (YAML/JSON, ``data_schemas/contract``) and ``settle``: payments, threshold
  probabilities, investor multiple and IRR.
- ``economics``: ``socio_economic_return`` (SØM-style public-budget NPV by payer) and tornado sensitivity.
- ``sections``: the building blocks of an evaluation report (headline box, data summary, robustness ...).
- ``disclosure``: statistical disclosure control (suppress small cells; check rendered reports).
- ``report``: run one parameterised notebook into an HTML report with results and manifest; ``reproduce``.
- ``batch``: run many reports in parallel from a YAML batch file; ``reports/index.html``.
- ``datasets``: the small synthetic data sets that ship with the package.
- ``cli``: the ``evaluator`` command (``simulate``, ``validate``, ``report``, ``batch``, ``demo``, ``reproduce``,
  ``disclosure-check``).
"""

from evaluator import (
    contracts,
    datasets,
    disclosure,
    economics,
    inference,
    matching,
    plots,
    report,
    sections,
    simulate,
)
from evaluator.contracts import Contract, Settlement, settle
from evaluator.data import load_individuals, load_panel, read_schema
from evaluator.did import did, event_study
from evaluator.disclosure import disclosure_check
from evaluator.economics import SocioEconomicReturn, socio_economic_return
from evaluator.errors import (
    ContractError,
    DataError,
    DesignError,
    DroppedUnitsWarning,
    EvaluatorError,
    EvaluatorWarning,
    FewClustersWarning,
    SmallCohortWarning,
    TrimmingWarning,
)
from evaluator.matching import MatchResult, match, matched_did, weighting
from evaluator.power import mde_from_design, minimum_detectable_effect, power
from evaluator.results import TIDY_COLUMNS, Result, tidy_table
from evaluator.staggered import StaggeredResult, staggered_did

__version__ = "0.1.0"

__all__ = [
    "Contract",
    "Settlement",
    "SocioEconomicReturn",
    "contracts",
    "disclosure",
    "disclosure_check",
    "economics",
    "settle",
    "socio_economic_return",
    "ContractError",
    "DataError",
    "DesignError",
    "DroppedUnitsWarning",
    "EvaluatorError",
    "EvaluatorWarning",
    "FewClustersWarning",
    "Result",
    "SmallCohortWarning",
    "TIDY_COLUMNS",
    "TrimmingWarning",
    "did",
    "event_study",
    "inference",
    "MatchResult",
    "StaggeredResult",
    "load_individuals",
    "match",
    "matched_did",
    "matching",
    "staggered_did",
    "weighting",
    "plots",
    "power",
    "minimum_detectable_effect",
    "mde_from_design",
    "sections",
    "report",
    "datasets",
    "load_panel",
    "read_schema",
    "simulate",
    "tidy_table",
]
