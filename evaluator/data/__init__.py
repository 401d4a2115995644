"""Data: read files, validate them against ``data_schemas/``, synthetic data and bundled data sets.

The bottom of the statistics library: everything above it receives a frame that
passed through here (``load_panel`` / ``load_individuals``), or validates a raw
frame with the same rule functions.

The names below are loaded on first use (``evaluator.data.load`` imports pandas), so that
``evaluator.data.datasets.resolve_data`` is cheap for the runner, which only checks paths.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "NEVER",
    "attrition_table",
    "load_cross_sections",
    "load_individuals",
    "load_panel",
    "never_treated",
    "read_schema",
    "schema_path",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'evaluator.data' has no attribute {name!r}")
    value = getattr(importlib.import_module("evaluator.data.load"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; nothing is imported at run time
    from evaluator.data.load import (
        NEVER,
        attrition_table,
        load_cross_sections,
        load_individuals,
        load_panel,
        never_treated,
        read_schema,
        schema_path,
    )
