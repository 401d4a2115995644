"""evaluator: did a social intervention work, and what is that worth?

Data flow::

    file --data.load_panel / load_individuals--> validated frame
         --did / staggered_did / event_study-->   Result (tidy table)
         --plots / Result.summary-->              figures and tables
         --notebooks + report-->                  HTML report

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
- ``report``: the demo and report rendering (papermill and nbconvert with the report pipeline).
- ``cli``: the ``evaluator`` command (``simulate``, ``validate``, ``demo``).
"""

from evaluator import inference, matching, plots, simulate
from evaluator.data import load_individuals, load_panel, read_schema
from evaluator.did import did, event_study
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
from evaluator.results import TIDY_COLUMNS, Result, tidy_table
from evaluator.staggered import StaggeredResult, staggered_did

__version__ = "0.1.0"

__all__ = [
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
    "load_panel",
    "read_schema",
    "simulate",
    "tidy_table",
]
