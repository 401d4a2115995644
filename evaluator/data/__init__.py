"""Data: read files, validate them against ``data_schemas/``, synthetic data and bundled data sets.

The bottom of the statistics library: everything above it receives a frame that
passed through here (``load_panel`` / ``load_individuals``), or validates a raw
frame with the same rule functions.
"""

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
