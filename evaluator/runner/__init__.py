"""The runner: execute report notebooks with papermill, one at a time or as batches; reproduce a run.

- ``parameters``: read a notebook's ``parameters`` cell, check and coerce values before anything runs.
- ``run``: ``run_report`` one notebook into ``report.html``, ``results.json`` and ``manifest.json``;
  ``kernels`` launches its kernel ahead (a spare per Dask worker boots while a report runs).
- ``reproduce``: re-run from a manifest and compare every number.
- ``batch``: many runs in parallel from a YAML file, with ``reports/index.html`` (and the command);
  ``batch_file`` reads and checks the file against ``data_schemas/batch.schema.json``,
  ``processes`` starts the runs and kills a run's process tree, ``index`` writes the index page,
  ``executors`` chooses where the runs execute (a local pool, or a Dask cluster with ``--scheduler``).
"""

from evaluator.runner.parameters import Parameter, check_parameters, notebook_parameters, notebook_path
from evaluator.runner.reproduce import Reproduction, reproduce
from evaluator.runner.run import THREAD_VARS, RunFailed, RunRecord, fingerprint, main_report, run_report

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
