"""The runner: execute report notebooks with papermill, one at a time or as batches; reproduce a run.

- ``parameters``: read a notebook's ``parameters`` cell, check and coerce values before anything runs.
- ``run``: ``run_report`` one notebook into ``report.html``, ``results.json`` and ``manifest.json``;
  ``kernels`` launches its kernel ahead (a spare per Dask worker boots while a report runs).
- ``reproduction``: ``reproduce`` re-runs a report from its manifest and compares every number.
- ``batch``: many runs in parallel from a YAML file, with ``reports/index.html`` (and the command);
  ``batch_file`` reads and checks the file against ``data_schemas/batch.schema.json``,
  ``processes`` starts the runs and kills a run's process tree, ``index`` writes the index page,
  ``executors`` chooses where the runs execute (a local pool, or a Dask cluster with ``--scheduler``).

The names below are loaded on first use (as in ``evaluator``), so that ``evaluator report`` can
launch its kernel from ``evaluator.runner.kernels`` before pandas and papermill are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> module that defines it (loaded on first access).
_NAMES: dict[str, str] = {
    "THREAD_VARS": "evaluator.runner.kernels",
    "Parameter": "evaluator.runner.parameters",
    "Reproduction": "evaluator.runner.reproduction",
    "RunFailed": "evaluator.runner.run",
    "RunRecord": "evaluator.runner.run",
    "check_parameters": "evaluator.runner.parameters",
    "fingerprint": "evaluator.runner.run",
    "main_report": "evaluator.runner.run",
    "notebook_parameters": "evaluator.runner.parameters",
    "notebook_path": "evaluator.runner.parameters",
    "reproduce": "evaluator.runner.reproduction",
    "run_report": "evaluator.runner.run",
}

__all__ = [
    "THREAD_VARS",
    "Parameter",
    "Reproduction",
    "RunFailed",
    "RunRecord",
    "check_parameters",
    "fingerprint",
    "main_report",
    "notebook_parameters",
    "notebook_path",
    "reproduce",
    "run_report",
]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'evaluator.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; nothing is imported at run time
    from evaluator.runner.kernels import THREAD_VARS
    from evaluator.runner.parameters import Parameter, check_parameters, notebook_parameters, notebook_path
    from evaluator.runner.reproduction import Reproduction, reproduce
    from evaluator.runner.run import RunFailed, RunRecord, fingerprint, main_report, run_report
