"""Read input data and validate it against its contract in ``data_schemas/``.

The contracts are Frictionless Table Schemas whose field names are *roles*
(``unit``, ``time``, ``outcome``, ``cohort`` ...). A user maps the roles to the
columns of their own file with ``columns={role: column}``. Validation collects
every problem it finds and raises one :class:`~evaluator.errors.DataError`
listing them all, each with the column, the first offending rows or units and a
hint. Rows are never dropped silently: where units are legitimately dropped (for
instance units never observed before their treatment starts) a
:class:`~evaluator.errors.DroppedUnitsWarning` says how many and why.

Three loaders, one per schema: :func:`load_panel` (units followed over periods;
the panel may be unbalanced), :func:`load_cross_sections` (repeated
cross-sections: a new sample each period, no unit id needed) and
:func:`load_individuals` (one row per person, for matching). Each returns the
validated frame with a summary in ``frame.attrs["evaluator"]``: the schema, the
resolved ``columns``, what was ``dropped``, ``notes`` (plain sentences for the
report's data section, e.g. that a panel is unbalanced) and, for panels,
``balance`` and the ``attrition`` table (see :func:`attrition_table`).

Rows in messages are *data rows counted from 1* (the first row after a CSV
header is row 1; it is line 2 of the file). The rules themselves, shared with
the estimators, are in :mod:`evaluator.data.validate`.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluator.data.validate import (
    duplicate_rows,
    missing_values,
    panel_balance,
    varies_within,
    where_rows,
    where_units,
)
from evaluator.errors import DataError, DroppedUnitsWarning, Problem, WeightsError, format_examples
from evaluator.files import shipped

if TYPE_CHECKING:
    from evaluator.data.panel_source import PanelSource

__all__ = [
    "load_panel",
    "load_cross_sections",
    "load_individuals",
    "attrition_table",
    "read_schema",
    "schema_path",
    "never_treated",
    "NEVER",
]

#: The cohort code of never-treated units in a validated panel.
NEVER = 0

Source = str | Path | pd.DataFrame


# -- schemas ----------------------------------------------------------------------
def schema_path(name: str) -> Path:
    """Path of the schema file called ``name`` (``"panel"``, ``"individuals"``) or at path ``name``.

    The schemas live in the repository's ``data_schemas/``; an installed wheel
    carries a copy inside the package.
    """
    if name.endswith(".json"):
        return Path(name)
    candidates = [shipped("data_schemas")]
    for folder in candidates:
        path = folder / f"{name}.schema.json"
        if path.is_file():
            return path
    known = sorted({p.name.removesuffix(".schema.json") for f in candidates if f.is_dir() for p in f.glob("*.json")})
    raise DataError([Problem(f"unknown schema {name!r}", hint=f"use one of {known} or a path to a .json schema")])


@lru_cache(maxsize=16)
def _read_schema_cached(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_schema(name: str) -> dict[str, Any]:
    """The Table Schema ``name`` as a dictionary.

    Examples
    --------
    >>> [f["name"] for f in read_schema("panel")["fields"]][:3]
    ['unit', 'time', 'outcome']
    """
    return json.loads(json.dumps(_read_schema_cached(str(schema_path(name)))))


# -- reading ----------------------------------------------------------------------
#: Widest file read: a panel or a person file has a handful of role columns, so a file far
#: wider than this is a wrong export (a transposed table, a matrix) and would only exhaust memory.
MAX_COLUMNS = 20_000

_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_PARQUET_MAGIC = b"PAR1"


def _too_wide(n: int, label: str) -> DataError:
    return DataError(
        [
            Problem(
                f"the file has {n:,} columns; evaluator reads at most {MAX_COLUMNS:,}",
                hint="export only the columns you map to roles (unit, time, outcome, cohort ...); "
                "a file this wide is usually a transposed table",
            )
        ],
        source=label,
    )


def _duplicates(names: Sequence[Any]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for name in map(str, names):
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    return dup


def _duplicate_error(dup: list[str], label: str) -> DataError:
    return DataError(
        [
            Problem(
                f"duplicate column names {dup[:20]}",
                hint="give every column a unique name (a reader would silently rename or drop the copies)",
            )
        ],
        source=label,
    )


def _sniff_csv(path: Path, label: str) -> None:
    """Refuse, before parsing, text that is not UTF-8, starts like Parquet or is absurdly wide."""
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        # The header line, read in bounded chunks (a million-column header is a few MB).
        first = b""
        while b"\n" not in first and len(first) < 64 * 2**20:
            chunk = fh.read(2**20)
            if not chunk:
                break
            first += chunk
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise DataError(
                [Problem(f"the file is {name} text, not UTF-8", hint="re-save the file with UTF-8 encoding")],
                source=label,
            )
    if head == _PARQUET_MAGIC:
        raise DataError(
            [Problem("the file is a Parquet file with a text extension", hint="rename it to .parquet")],
            source=label,
        )
    line = first.split(b"\n", 1)[0]
    width = max(line.count(sep) for sep in (b",", b";", b"\t")) + 1
    if width > MAX_COLUMNS:
        raise _too_wide(width, label)


def _sniff_parquet(path: Path, label: str) -> None:
    """Check the Parquet footer (schema) before reading: width and duplicate names."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:
        raise DataError(
            [
                Problem(
                    f"the file could not be read as Parquet ({type(exc).__name__}: {exc})",
                    hint="the file is truncated or corrupt, or not Parquet at all: export it again",
                )
            ],
            source=label,
        ) from None
    names = [n for n in names if n != "__index_level_0__"]
    if len(names) > MAX_COLUMNS:
        raise _too_wide(len(names), label)
    dup = _duplicates(names)
    if dup:
        raise _duplicate_error(dup, label)


def _read(
    source: Source, missing_values: Sequence[str], *, sep: str | None = None, decimal: str = "."
) -> tuple[pd.DataFrame, str]:
    """Read a CSV or Parquet file (or copy a DataFrame); every failure is a DataError."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), "the DataFrame"
    path = Path(source)
    label = str(path)
    if not path.exists():
        raise DataError([Problem(f"file not found: {path}", hint="check the path and the working directory")])
    if path.is_dir():
        raise DataError(
            [Problem(f"{path} is a folder, not a data file", hint="give the path of a .csv or .parquet file")]
        )
    suffix = (
        "".join(path.suffixes[-2:]).lower() if path.suffix.lower() in {".gz", ".zip", ".bz2"} else path.suffix.lower()
    )
    if path.stat().st_size == 0:
        raise DataError([Problem("the file is empty (0 bytes)", hint="check that the export finished")], source=label)
    try:
        if suffix in {".parquet", ".pq"}:
            _sniff_parquet(path, label)
            frame = pd.read_parquet(path)
        elif suffix.startswith(".csv") or suffix in {".txt", ".tsv"}:
            if sep is None and suffix == ".tsv":
                sep = "\t"
            options: dict[str, Any] = {
                "sep": sep,  # None: sniffed (comma, semicolon or tab)
                "engine": "python" if sep is None else "c",
                "encoding": "utf-8-sig",
            }
            if suffix in {".csv", ".txt", ".tsv"}:
                _sniff_csv(path, label)
            frame = pd.read_csv(path, na_values=list(missing_values), keep_default_na=False, decimal=decimal, **options)
            # pandas renames a repeated header name ('y', 'y.1'); read the header as it is written.
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **options)
            dup = _duplicates(header.iloc[0].tolist()) if len(header) else []
            if dup:
                raise _duplicate_error(dup, label)
        else:
            raise DataError(
                [Problem(f"unsupported file type '{path.suffix}'", hint="save the data as .csv or .parquet")],
                source=label,
            )
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            [
                Problem(
                    f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    hint="re-save the file with UTF-8 encoding",
                )
            ],
            source=label,
        ) from None
    except MemoryError:
        raise DataError(
            [Problem("the file is too large to read into memory", hint="export only the rows and columns you need")],
            source=label,
        ) from None
    except Exception as exc:
        raise DataError(
            [
                Problem(
                    f"the file could not be read: {type(exc).__name__}: {exc}",
                    hint="check that it is a valid CSV (comma or semicolon separated, quotes closed, the same "
                    "number of fields on every line) or Parquet file",
                )
            ],
            source=label,
        ) from None
    if frame.shape[1] > MAX_COLUMNS:
        raise _too_wide(frame.shape[1], label)
    return frame, label


# -- helpers ----------------------------------------------------------------------
def never_treated(cohort: pd.Series) -> pd.Series:
    """True where a cohort value marks a never-treated unit (0 or missing)."""
    return cohort.isna() | (cohort == NEVER)


def _numeric(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Coerce to numbers; also return where a non-missing value failed to convert."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("int64")
    if pd.api.types.is_numeric_dtype(series):
        converted = series.astype("float64") if not pd.api.types.is_integer_dtype(series) else series
        bad = pd.Series(False, index=series.index)
        if pd.api.types.is_float_dtype(converted):
            bad = pd.Series(np.isinf(converted.to_numpy()), index=series.index)
        return converted, bad
    text = series.astype("string").str.strip()
    lowered = text.str.lower()
    text = text.mask(lowered.isin(["true"]), "1").mask(lowered.isin(["false"]), "0")
    converted = pd.to_numeric(text, errors="coerce")
    bad = converted.isna() & series.notna()
    converted = converted.astype("float64")
    bad = bad | pd.Series(np.isinf(converted.to_numpy()), index=series.index)
    return converted, bad


def _as_int_if_whole(series: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(series) and series.notna().all():
        values = series.to_numpy()
        if np.all(np.mod(values, 1) == 0):
            return series.astype("int64")
    return series


def _resolve_columns(
    frame: pd.DataFrame, schema: Mapping[str, Any], columns: Mapping[str, Any] | None, problems: list[Problem]
) -> dict[str, Any]:
    """Map each role to the column(s) of the frame; record missing or unknown ones."""
    fields = {f["name"]: f for f in schema["fields"]}
    columns = dict(columns or {})
    unknown = [k for k in columns if k not in fields]
    for key in unknown:
        close = difflib.get_close_matches(key, list(fields), n=1)
        problems.append(
            Problem(
                f"unknown role '{key}' in columns=",
                hint=(f"did you mean '{close[0]}'? " if close else "") + f"the roles of this schema are {list(fields)}",
            )
        )
    available = [str(c) for c in frame.columns]
    resolved: dict[str, Any] = {}
    for role, field in fields.items():
        meta = field.get("x-evaluator", {})
        multiple = meta.get("multiple", False)
        required = meta.get("presence") == "required"
        given = columns.get(role)
        if given is None:
            given = role if role in frame.columns else None
            if given is None and not required:
                continue
        names = ([given] if isinstance(given, str) else list(given)) if given is not None else []
        if given is None or (multiple and not names):
            problems.append(
                Problem(
                    f"no column given for the required role '{role}' ({field.get('title', role)})",
                    hint=f"name it with columns={{'{role}': <column>}}; the file's columns are {available[:20]}",
                )
            )
            continue
        if not multiple and len(names) != 1:
            problems.append(Problem(f"role '{role}' takes one column, got {names}", hint="give a single column name"))
            continue
        present = []
        for name in names:
            if name in frame.columns:
                if (frame.columns == name).sum() == 1:  # duplicated names are reported below
                    present.append(name)
                continue
            close = difflib.get_close_matches(str(name), available, n=1)
            problems.append(
                Problem(
                    f"missing column for role '{role}'",
                    column=str(name),
                    hint=(f"did you mean '{close[0]}'? " if close else "") + f"the file's columns are {available[:20]}",
                )
            )
        if present:
            resolved[role] = present if multiple else present[0]
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        problems.append(Problem(f"duplicate column names {dup}", hint="give every column a unique name"))
    return resolved


#: A number written with a decimal comma (``2,5``, ``-1.234,5``), as Nordic spreadsheets export them.
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d{1,3}(?:[.\s]\d{3})*,\d+\s*$|^\s*[-+]?\d+,\d+\s*$")


def _decimal_commas(values: pd.Series) -> bool:
    """Whether most of these unreadable values are numbers with a decimal comma."""
    text = values.dropna().astype(str)
    return len(text) > 0 and text.str.match(_DECIMAL_COMMA).mean() >= 0.5


def _check_csv_options(sep: str | None, decimal: str) -> None:
    problems = []
    if sep is not None and (not isinstance(sep, str) or sep == ""):
        problems.append(Problem(f"sep={sep!r} is not a separator", hint="give one character, e.g. sep=';', or None"))
    if not isinstance(decimal, str) or len(decimal) != 1:
        problems.append(Problem(f"decimal={decimal!r} is not one character", hint="use decimal='.' or decimal=','"))
    elif sep is not None and decimal == sep:
        problems.append(
            Problem(f"decimal={decimal!r} equals sep", hint="they must differ, e.g. sep=';' with decimal=','")
        )
    if problems:
        raise DataError(problems)


def _check_fields(
    frame: pd.DataFrame, schema: Mapping[str, Any], resolved: Mapping[str, Any], problems: list[Problem]
) -> pd.DataFrame:
    """Check type, required values, enum and minimum of every mapped column; coerce numbers."""
    out = frame
    for field in schema["fields"]:
        role = field["name"]
        if role not in resolved:
            continue
        names = resolved[role] if isinstance(resolved[role], list) else [resolved[role]]
        constraints = field.get("constraints", {})
        for name in names:
            col = frame[name]
            bad = pd.Series(False, index=frame.index)
            if field["type"] in {"number", "integer"}:
                converted, bad = _numeric(col)
                if bad.any():
                    examples = format_examples([repr(v) for v in col[bad].unique()[:5]])
                    hint = "fix or remove these values; write missing values as an empty cell or NA"
                    if _decimal_commas(col[bad]):
                        hint = (
                            "these look like numbers written with a decimal comma, as Danish, Swedish and Finnish "
                            "exports write them: read the file with decimal=',' (and sep=';' if it is "
                            "semicolon-separated)"
                        )
                    problems.append(
                        Problem(
                            f"{role} must be numeric but has {int(bad.sum())} non-numeric value(s) ({examples})",
                            column=name,
                            where=where_rows(bad),
                            hint=hint,
                        )
                    )
                    converted = converted.mask(bad)
                if field["type"] == "integer":
                    huge = converted.abs() > 2**53
                    if huge.any():
                        problems.append(
                            Problem(
                                f"{role} has values too large to be a whole number "
                                f"({format_examples(converted[huge].unique()[:5])})",
                                column=name,
                                where=where_rows(huge),
                                hint="code periods and cohorts as small whole numbers (a year, 202401, 1, 2, 3 ...)",
                            )
                        )
                        converted = converted.mask(huge)
                        bad = bad | huge
                    frac = converted.notna() & (np.mod(converted.fillna(0).to_numpy(dtype=float), 1) != 0)
                    if frac.any():
                        problems.append(
                            Problem(
                                f"{role} must be a whole number but has fractional values "
                                f"({format_examples(converted[frac].unique()[:5])})",
                                column=name,
                                where=where_rows(frac),
                                hint="code periods and cohorts as whole numbers (a year, 202401, or 1, 2, 3 ...)",
                            )
                        )
                out = out if out is not frame else frame.copy()
                out[name] = _as_int_if_whole(converted)
                col = out[name]
            if constraints.get("required"):
                # `cohort` is optional per value (missing = never treated); others must be present.
                # non-numeric values were reported above
                problems += missing_values(out, [name], before="loading", role=role, exclude=bad.to_numpy())
            if "enum" in constraints:
                allowed = constraints["enum"]
                outside = col.notna() & ~col.isin(allowed)
                if outside.any():
                    problems.append(
                        Problem(
                            f"{role} must be one of {allowed}, found {format_examples(col[outside].unique()[:5])}",
                            column=name,
                            where=where_rows(outside),
                            hint=f"recode {role} as {allowed}",
                        )
                    )
            if "minimum" in constraints and pd.api.types.is_numeric_dtype(col):
                low = col < constraints["minimum"]
                if low.any():
                    problems.append(
                        Problem(
                            f"{role} must be at least {constraints['minimum']}",
                            column=name,
                            where=where_rows(low),
                            hint="weights cannot be negative",
                        )
                    )
    return out if out is not frame else frame.copy()


# -- panel rules ------------------------------------------------------------------
def _cohort_value_rules(
    frame: pd.DataFrame,
    cohort: str,
    usable: pd.Series,
    periods: np.ndarray,
    problems: list[Problem],
    *,
    where: Any,
    who: str = "units",
) -> None:
    """Cohort values are observed periods (or 0/empty for never treated); 0 is ambiguous if period 0 exists."""
    values = frame[cohort]
    treated_rows = usable & ~never_treated(values)
    if len(periods) and 0 in set(periods.tolist()) and (values == NEVER).any():
        problems.append(
            Problem(
                "period 0 is observed, so cohort 0 cannot mean never treated",
                column=cohort,
                hint=f"mark never-treated {who} with an empty cell, or number periods from 1",
            )
        )
    if len(periods):
        outside = treated_rows & ~values.isin(periods)
        if outside.any():
            bad_values = np.sort(values[outside].unique())
            problems.append(
                Problem(
                    f"cohort values outside the observed periods {periods.min()}..{periods.max()} "
                    f"or between them: {format_examples(bad_values)}",
                    column=cohort,
                    where=where(outside),
                    hint=f"a cohort must be an observed period; code {who} first treated after the last "
                    "period as never treated (0 or empty)",
                )
            )


def _weight_rules(
    frame: pd.DataFrame, roles: Mapping[str, Any], problems: list[Problem], *, unit: str | None = None
) -> None:
    """Weights not zero everywhere and, in a panel (``unit``), the same in every row of a unit.

    Missing, non-numeric and negative weights were reported by the field checks; the
    rows they name are left out here, so each fault is reported once.
    """
    weight = roles.get("weight")
    if weight is None or not pd.api.types.is_numeric_dtype(frame[weight]):
        return
    w = frame[weight]
    valid = w.notna() & (w >= 0)
    if unit is not None:
        valid = valid & frame[unit].notna()
    if valid.any() and (w[valid] == 0).all():
        problems.append(
            Problem(
                "the weights are zero everywhere",
                column=weight,
                hint="give positive weights (a weight of 0 leaves a row out), or leave the weight role out",
            )
        )
    if unit is not None and valid.any():
        changing = varies_within(frame.loc[valid], unit, weight)
        if len(changing):
            # worded as the estimators' check of weights (evaluator.estimators.design.check_weights)
            problems.append(
                Problem(
                    f"the weights vary within {len(changing)} of {frame.loc[valid, unit].nunique()} units; "
                    "sampling weights belong to a unit of the panel",
                    column=weight,
                    where=where_units(changing),
                    hint=f"give each unit one weight in every period, e.g. its weight at entry: "
                    f"data[{weight!r}] = data.groupby({unit!r})[{weight!r}].transform('first')",
                )
            )


def _raise(problems: list[Problem], roles: Mapping[str, Any], label: str) -> None:
    """Raise the problems as one error: a WeightsError (a DataError) if any is about the weights."""
    if not problems:
        return
    weight = roles.get("weight")
    cls = WeightsError if weight is not None and any(p.column == weight for p in problems) else DataError
    raise cls(problems, source=label)


def _panel_rules(
    frame: pd.DataFrame, roles: dict[str, Any], problems: list[Problem]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    unit, time = roles["unit"], roles["time"]
    cohort, treatment, cluster = roles.get("cohort"), roles.get("treatment"), roles.get("cluster")
    usable = frame[unit].notna() & frame[time].notna()
    problems.extend(duplicate_rows(frame, [unit, time], among=usable.to_numpy()))
    periods = np.sort(frame.loc[usable, time].unique())

    if cohort is None and treatment is None:
        problems.append(
            Problem(
                "neither a 'cohort' (first treated period) nor a 'treatment' (0/1) column was given",
                hint="map one of them with columns={'cohort': ...} or columns={'treatment': ...}",
            )
        )
    if cohort is not None:
        changing = varies_within(frame.loc[usable], unit, cohort)
        if len(changing):
            problems.append(
                Problem(
                    f"the cohort changes over time within {len(changing)} unit(s)",
                    column=cohort,
                    where=where_units(changing),
                    hint="a unit's cohort is its first treated period and must be the same in every row",
                )
            )
        _cohort_value_rules(
            frame, cohort, usable, periods, problems, where=lambda m: where_units(frame.loc[m, unit].unique())
        )
    if cluster is not None:
        changing = varies_within(frame.loc[usable], unit, cluster)
        if len(changing):
            problems.append(
                Problem(
                    f"the cluster changes within {len(changing)} unit(s)",
                    column=cluster,
                    where=where_units(changing),
                    hint="a unit must stay in one cluster; use the cluster at treatment start (or at entry)",
                )
            )
    if treatment is not None:
        ordered = frame.loc[usable].sort_values([unit, time], kind="stable")
        d = ordered[treatment]
        same_unit = ordered[unit].eq(ordered[unit].shift())
        off = same_unit & (d.shift() == 1) & (d == 0)
        if off.any():
            problems.append(
                Problem(
                    "treatment switches off: a unit goes from treated (1) back to untreated (0)",
                    column=treatment,
                    where=where_units(ordered.loc[off, unit].unique())
                    + " ("
                    + where_rows(off.reindex(frame.index, fill_value=False))
                    + ")",
                    hint="evaluator estimates effects of treatment that stays on; code the first treated period as "
                    "the cohort and keep treatment on afterwards",
                )
            )
        first = ordered.loc[d == 1].groupby(unit, sort=False)[time].min()
        if cohort is not None:
            ctab = ordered.groupby(unit, sort=False)[cohort].first()
            implied = first.reindex(ctab.index)
            disagree = ~((never_treated(ctab) & implied.isna()) | (ctab == implied))
            if disagree.any():
                problems.append(
                    Problem(
                        f"treatment and cohort disagree for {int(disagree.sum())} unit(s)",
                        column=f"{treatment}, {cohort}",
                        where=where_units(ctab.index[disagree]),
                        hint="cohort must be the first period with treatment 1 (0 or empty if never treated)",
                    )
                )
        else:
            # Derive the cohort from the indicator, under a name the file does not use.
            name = next(n for n in ("cohort", "first_treated_period", "_cohort") if n not in frame.columns)
            frame = frame.copy()
            frame[name] = frame[unit].map(first)
            roles = {**roles, "cohort": name}
    n_units = frame.loc[usable, unit].nunique()
    if n_units == 1:
        problems.append(
            Problem(
                "the panel has only 1 unit",
                column=unit,
                hint="difference-in-differences compares treated units with comparison units; check the export",
            )
        )
    cohort = roles.get("cohort")
    flagged = {p.column for p in problems}
    if n_units and cohort is not None and not flagged & {cohort, treatment}:
        if never_treated(frame.loc[usable, cohort]).all():
            problems.append(
                Problem(
                    "there are no treated units: every cohort is 0 or empty"
                    + (" (treatment is never 1)" if treatment is not None else ""),
                    column=treatment or cohort,
                    hint="code the first treated period as the cohort of treated units",
                )
            )
    return frame, roles


def _drop_no_pre_period(frame: pd.DataFrame, roles: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop units never observed before their first treated period, with a warning."""
    unit, time, cohort = roles["unit"], roles["time"], roles["cohort"]
    first_seen = frame.groupby(unit, sort=False)[time].transform("min")
    bad = ~never_treated(frame[cohort]) & (first_seen >= frame[cohort])
    if not bad.any():
        return frame, {}
    units = frame.loc[bad, unit].unique()
    warnings.warn(
        f"dropped {len(units)} unit(s) ({int(bad.sum())} rows) never observed before their first treated period "
        f"(column '{cohort}'): without a pre-treatment period their change cannot be measured; "
        f"{where_units(units)}",
        DroppedUnitsWarning,
        stacklevel=3,
    )
    kept = frame.loc[~bad].reset_index(drop=True)
    return kept, {"no_pre_period": {"units": len(units), "rows": int(bad.sum())}}


def _dropped_note(dropped: Mapping[str, Any], cohort: str) -> list[str]:
    """The drop as a note, for the summary (the warning says the same, naming the units)."""
    d = dropped.get("no_pre_period")
    if not d:
        return []
    what = f"{d['cohorts']} cohort(s)" if "cohorts" in d else f"{d['units']} unit(s)"
    return [
        f"dropped {what} ({d['rows']} rows) never observed before their first treated period "
        f"(column '{cohort}'): without a pre-treatment period their change cannot be measured"
    ]


def _balance_notes(b: Mapping[str, Any]) -> list[str]:
    """Plain sentences on an unbalanced panel for the data section (none for a balanced one)."""
    if b["balanced"]:
        return []
    parts = [
        f"{b[k]:,} {text}"
        for k, text in (
            ("enter_late", "enter after the first period"),
            ("leave_early", "leave before the last"),
            ("gaps", "miss periods in between"),
        )
        if b[k]
    ]
    notes = [
        f"unbalanced panel: {b['incomplete']:,} of {b['units']:,} units are not observed in all {b['periods']} "
        f"periods ({', '.join(parts)}); effects are averages over the units observed in each period, so "
        "attrition that depends on the outcome can bias them"
    ]
    if b["single_period"]:
        notes.append(f"{b['single_period']:,} units are observed in a single period and carry no change over time")
    if b["leave_before_treatment"]:
        notes.append(
            f"{b['leave_before_treatment']:,} treated units leave before their first treated period and add "
            "nothing to the effects after it"
        )
    if b["no_base_period"]:
        notes.append(
            f"{b['no_base_period']:,} treated units observed after their first treated period are not observed "
            "in the period just before it, the base period of their post-treatment comparisons"
        )
    return notes


def attrition_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Units by periods observed (rows, most first) and cohort (columns) of a panel from :func:`load_panel`.

    A balanced panel has one row (every unit observed in every period). The table
    is read from ``frame.attrs["evaluator"]["attrition"]``, or computed when the
    frame has none.

    Examples
    --------
    >>> from evaluator import simulate
    >>> sim = simulate.sick_leave_sib(seed=1, attrition=0.05)
    >>> table = attrition_table(load_panel(sim.data, columns=sim.columns))
    >>> table.index.name, table.columns.tolist(), int(table.to_numpy().sum())
    ('periods observed', [0, 13, 25, 37], 1000)
    """
    meta = frame.attrs.get("evaluator", {})
    table = meta.get("attrition")
    if table is None:
        roles = meta.get("columns", {})
        missing = [r for r in ("unit", "time", "cohort") if r not in roles]
        if missing:
            raise DataError(
                [
                    Problem(
                        f"the frame has no attrition table and no columns for the roles {missing}",
                        hint="pass a frame returned by load_panel",
                    )
                ]
            )
        table = panel_balance(frame, roles["unit"], roles["time"], roles["cohort"])["attrition"]
    out = pd.DataFrame(table).fillna(0).astype("int64").sort_index(ascending=False)
    out = out.reindex(sorted(out.columns), axis=1)
    out.index.name, out.columns.name = "periods observed", "cohort"
    return out


# -- public loaders ---------------------------------------------------------------
def _load(
    source: Source, schema: str, columns: Mapping[str, Any] | None, *, sep: str | None = None, decimal: str = "."
) -> tuple[pd.DataFrame, dict[str, Any], str, list[Problem]]:
    """Read, map roles and check fields; return the problems found so far (not raised yet)."""
    _check_csv_options(sep, decimal)
    spec = read_schema(schema)
    frame, label = _read(source, spec.get("missingValues", [""]), sep=sep, decimal=decimal)
    if frame.shape[0] == 0:
        raise DataError(
            [
                Problem(
                    f"the data have no rows (columns: {[str(c) for c in frame.columns][:20]})",
                    hint="check the export or the filter that produced the file",
                )
            ],
            source=label,
        )
    problems: list[Problem] = []
    roles = _resolve_columns(frame, spec, columns, problems)
    _check_scalar(frame, roles, problems)
    if problems and any(p.what.startswith("nested values") for p in problems):
        raise DataError(problems, source=label)  # nested values cannot be compared or counted
    frame = _check_fields(frame, spec, roles, problems)
    return frame, roles, label, problems


def _check_scalar(frame: pd.DataFrame, roles: Mapping[str, Any], problems: list[Problem]) -> None:
    """Report mapped columns holding lists, arrays or records (nested Parquet types) instead of single values."""
    for role, names in roles.items():
        for name in names if isinstance(names, list) else [names]:
            col = frame[name]
            if col.dtype != object:
                continue
            nested = col.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray)), na_action="ignore")
            nested = nested.fillna(False).astype(bool)
            if nested.any():
                kinds = sorted({type(v).__name__ for v in col[nested].head(100)})
                problems.append(
                    Problem(
                        f"nested values ({', '.join(kinds)}) in role '{role}'; every cell must hold one value",
                        column=str(name),
                        where=where_rows(nested),
                        hint="flatten the column (one row per unit and period, one value per cell) before loading",
                    )
                )


def load_panel(
    source: Source,
    *,
    schema: str = "panel",
    columns: Mapping[str, Any] | None = None,
    sep: str | None = None,
    decimal: str = ".",
    out_of_core: bool = False,
) -> pd.DataFrame | PanelSource:
    """Read a unit-by-period panel and validate it against ``data_schemas/panel.schema.json``.

    Parameters
    ----------
    source : str, Path, DataFrame or pyarrow.dataset.Dataset
        A ``.csv`` or ``.parquet`` file, or a DataFrame (copied, never modified). A folder
        of Parquet files or a pyarrow Dataset is read out of core (see ``out_of_core``).
    schema : str
        Schema name in ``data_schemas/`` or a path to a Table Schema JSON file.
    columns : mapping, optional
        Role -> column of the file, e.g. ``{"unit": "employee_id", "time": "month",
        "outcome": "sick_days", "cohort": "first_treated", "cluster": "municipality"}``.
        ``outcome`` and ``covariates`` take a name or a list. Roles not given are
        looked up under their own name.
    sep : str, optional
        Field separator of a CSV file; by default sniffed (comma, semicolon or tab).
    decimal : str
        Decimal mark of a CSV file's numbers: ``","`` for files written the Danish,
        Swedish or Finnish way (``2,5``), usually with ``sep=";"``.
    out_of_core : bool
        Validate a Parquet file without reading it into memory (a folder or a Dataset
        always is): one pass over blocks of whole units, the rows sorted by unit, then
        period (:func:`evaluator.data.panel_source.scan_panel`). The result is then a
        :class:`~evaluator.data.panel_source.PanelSource`, which
        :func:`evaluator.staggered_did` takes as ``data``; its ``attrs["evaluator"]``
        holds the same summary as the frame's.

    Returns
    -------
    pandas.DataFrame or PanelSource
        The data with the file's own column names, numeric columns as numbers and
        never-treated cohorts coded 0. ``frame.attrs["evaluator"]`` holds the
        schema name, the resolved ``columns`` mapping, anything ``dropped``,
        ``notes`` (sentences for the report's data section: what was dropped, and
        whether the panel is unbalanced), ``balance`` (counts of units entering
        late, leaving early, with gaps, seen once, without a base period: see
        :func:`evaluator.data.validate.panel_balance`) and ``attrition`` (cohort ->
        {periods observed -> units}; :func:`attrition_table` makes it a table).

    Raises
    ------
    DataError
        Listing every problem found: unreadable or empty file, missing columns,
        wrong types, missing values, duplicate unit-period rows, cohorts changing
        within a unit or outside the observed periods, treatment switching off,
        clusters changing within a unit. A :class:`~evaluator.errors.WeightsError`
        (a DataError) when the problems include the ``weight`` column: missing,
        negative, zero everywhere, or changing within a unit.

    Warns
    -----
    DroppedUnitsWarning
        When units never observed before their first treated period are dropped.

    Notes
    -----
    An unbalanced panel (units that join late, leave early or miss periods) is
    valid: it is described in ``notes`` and ``attrition``, never refused. A unit
    is dropped only if it is never observed before its own first treated period
    (for instance it joined a treated municipality after adoption), even if
    others of its cohort were; a treated unit observed before adoption but not
    in the period just before it is kept and counted in ``balance`` as
    ``no_base_period``. Data without unit ids, a new sample each period, are
    repeated cross-sections: :func:`load_cross_sections`.

    Examples
    --------
    >>> from evaluator import simulate
    >>> sim = simulate.sick_leave_sib(seed=1)
    >>> panel = load_panel(sim.data, columns=sim.columns)
    >>> panel.attrs["evaluator"]["columns"]["unit"]
    'employee'
    >>> panel.attrs["evaluator"]["notes"], panel.attrs["evaluator"]["attrition"]
    ([], {0: {48: 400}, 13: {48: 200}, 25: {48: 200}, 37: {48: 200}})

    With employees leaving the panel is unbalanced, which is a note, not an error:

    >>> sim = simulate.sick_leave_sib(seed=1, attrition=0.02)
    >>> panel = load_panel(sim.data, columns=sim.columns)
    >>> panel.attrs["evaluator"]["balance"]["balanced"]
    False
    >>> print(panel.attrs["evaluator"]["notes"][0][:71])
    unbalanced panel: 634 of 1,000 units are not observed in all 48 periods
    """
    from evaluator.data.panel_source import is_out_of_core_source, scan_panel

    if out_of_core or is_out_of_core_source(source):
        if isinstance(source, pd.DataFrame):
            raise DataError(
                [Problem("out_of_core=True reads a Parquet file, folder or pyarrow Dataset, not a DataFrame")]
            )
        return scan_panel(source, schema=schema, columns=columns)
    frame, roles, label, problems = _load(source, schema, columns, sep=sep, decimal=decimal)
    if "unit" in roles and "time" in roles:
        frame, roles = _panel_rules(frame, roles, problems)
        _weight_rules(frame, roles, problems, unit=roles["unit"])
    elif "unit" not in roles and "time" in roles:
        problems[:] = [
            replace(
                p,
                hint=p.hint + "; data without unit ids (a new sample each period) are repeated "
                "cross-sections: load them with load_cross_sections",
            )
            if p.what.startswith("no column given for the required role 'unit'")
            else p
            for p in problems
        ]
    _raise(problems, roles, label)
    cohort = roles["cohort"]
    frame[cohort] = frame[cohort].fillna(NEVER).astype("int64")
    frame, dropped = _drop_no_pre_period(frame, roles)
    balance = panel_balance(frame, roles["unit"], roles["time"], cohort)
    attrition = balance.pop("attrition")
    frame.attrs["evaluator"] = {
        "schema": schema,
        "columns": roles,
        "dropped": dropped,
        "source": label,
        "notes": _dropped_note(dropped, cohort) + _balance_notes(balance),
        "balance": balance,
        "attrition": attrition,
    }
    return frame


def _cross_section_rules(frame: pd.DataFrame, roles: dict[str, Any], problems: list[Problem]) -> None:
    time, cohort, unit = roles["time"], roles["cohort"], roles.get("unit")
    usable = frame[time].notna()
    periods = np.sort(frame.loc[usable, time].unique())
    _cohort_value_rules(frame, cohort, usable, periods, problems, where=where_rows, who="groups")
    if unit is not None:
        among = (usable & frame[unit].notna()).to_numpy()
        dup = np.zeros(len(frame), dtype=bool)
        dup[among] = frame.loc[among].duplicated(subset=[unit, time], keep=False).to_numpy()
        if dup.any():
            units = frame.loc[dup, unit].unique()
            problems.append(
                Problem(
                    f"{len(units)} person id(s) repeat within a period ({int(dup.sum())} rows): these data are a "
                    "panel, not repeated cross-sections",
                    column=f"{unit}, {time}",
                    where=f"{where_units(units)} ({where_rows(dup)})",
                    hint="load one row per unit and period with load_panel; if the rows are different people, "
                    "give each its own id or leave the unit role out",
                )
            )
    flagged = {p.column for p in problems}
    if cohort not in flagged and never_treated(frame.loc[usable, cohort]).all():
        problems.append(
            Problem(
                "there are no treated rows: every cohort is 0 or empty",
                column=cohort,
                hint="code the first treated period of each person's group as the cohort",
            )
        )


def _drop_cohorts_no_pre_period(frame: pd.DataFrame, roles: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop the rows of cohorts never observed before their first treated period, with a warning."""
    time, cohort, unit = roles["time"], roles["cohort"], roles.get("unit")
    first_seen = frame.groupby(cohort, sort=False)[time].transform("min")
    bad = ~never_treated(frame[cohort]) & (first_seen >= frame[cohort])
    if not bad.any():
        return frame, {}
    cohorts = np.sort(frame.loc[bad, cohort].unique())
    people = int(frame.loc[bad, unit].nunique()) if unit is not None else int(bad.sum())
    warnings.warn(
        f"dropped {len(cohorts)} cohort(s) ({int(bad.sum())} rows) never observed before their first treated "
        f"period (column '{cohort}'): without a pre-treatment period their change cannot be measured; "
        f"{format_examples(cohorts.tolist(), label='cohorts')}",
        DroppedUnitsWarning,
        stacklevel=3,
    )
    kept = frame.loc[~bad].reset_index(drop=True)
    return kept, {"no_pre_period": {"cohorts": len(cohorts), "units": people, "rows": int(bad.sum())}}


def _cross_section_notes(frame: pd.DataFrame, roles: Mapping[str, Any]) -> tuple[list[str], dict[int, dict[int, int]]]:
    """Notes on repeated cross-sections and the rows by cohort and period."""
    time, cohort, unit = roles["time"], roles["cohort"], roles.get("unit")
    sizes = frame.groupby([cohort, time]).size()
    table: dict[int, dict[int, int]] = {}
    for (g, t), n in sizes.items():
        table.setdefault(int(g), {})[int(t)] = int(n)
    notes = []
    n_cells = frame[cohort].nunique() * frame[time].nunique()
    empty = n_cells - len(sizes)
    if empty:
        notes.append(f"{empty:,} of the {n_cells:,} cohort-by-period cells have no observations")
    if unit is not None:
        repeat = frame.groupby(unit, sort=False)[time].size()
        if (repeat > 1).any():
            notes.append(
                f"{int((repeat > 1).sum()):,} of {len(repeat):,} persons appear in more than one period; the rows "
                "are used as repeated cross-sections, each row one observation"
            )
    return notes, table


def load_cross_sections(
    source: Source,
    *,
    schema: str = "cross_sections",
    columns: Mapping[str, Any] | None = None,
    sep: str | None = None,
    decimal: str = ".",
) -> pd.DataFrame:
    """Read repeated cross-sections and validate them against ``data_schemas/cross_sections.schema.json``.

    One row per person and period, a new sample each period (survey waves,
    yearly register extracts), with treatment assigned to groups: a person's
    cohort is the first treated period of their group (municipality, region).

    Parameters
    ----------
    source : str, Path or DataFrame
        A ``.csv`` or ``.parquet`` file, or a DataFrame (copied, never modified).
    schema : str
        Schema name in ``data_schemas/`` or a path to a Table Schema JSON file.
    columns : mapping, optional
        Role -> column: ``time``, ``outcome`` (a name or a list) and ``cohort`` are
        required; ``unit`` (a person id: at most one row per person and period),
        ``cluster``, ``covariates`` and ``weight`` are optional. Roles not given are
        looked up under their own name.
    sep : str, optional
        Field separator of a CSV file; by default sniffed (comma, semicolon or tab).
    decimal : str
        Decimal mark of a CSV file's numbers (``","`` for Nordic exports).

    Returns
    -------
    pandas.DataFrame
        The data with the file's own column names and never-treated cohorts coded
        0. ``frame.attrs["evaluator"]`` holds the schema name, the resolved
        ``columns``, anything ``dropped``, ``notes`` and ``observations`` (cohort ->
        {period -> rows}).

    Raises
    ------
    DataError
        Listing every problem found: unreadable file, missing columns, wrong types,
        missing values, cohorts outside the observed periods, no treated rows, a
        person id repeated within a period (the data are then a panel: use
        :func:`load_panel`). A :class:`~evaluator.errors.WeightsError` (a DataError)
        when the problems include the ``weight`` column (missing, negative, zero
        everywhere; weights may differ between periods).

    Warns
    -----
    DroppedUnitsWarning
        When cohorts never observed before their first treated period are dropped.

    Examples
    --------
    >>> people = pd.DataFrame({"year": [1, 1, 2, 2, 3, 3], "y": [1.0, 2.0, 1.5, 2.5, 1.0, 4.0],
    ...                        "g": [0, 2, 0, 2, 0, 2], "w": [1.0, 2.0, 1.0, 1.0, 2.0, 1.0]})
    >>> rc = load_cross_sections(people, columns={"time": "year", "outcome": "y", "cohort": "g", "weight": "w"})
    >>> rc.attrs["evaluator"]["observations"]
    {0: {1: 1, 2: 1, 3: 1}, 2: {1: 1, 2: 1, 3: 1}}
    """
    frame, roles, label, problems = _load(source, schema, columns, sep=sep, decimal=decimal)
    if "time" in roles and "cohort" in roles:
        _cross_section_rules(frame, roles, problems)
    _weight_rules(frame, roles, problems)
    _raise(problems, roles, label)
    cohort = roles["cohort"]
    frame[cohort] = frame[cohort].fillna(NEVER).astype("int64")
    frame, dropped = _drop_cohorts_no_pre_period(frame, roles)
    notes, table = _cross_section_notes(frame, roles)
    frame.attrs["evaluator"] = {
        "schema": schema,
        "columns": roles,
        "dropped": dropped,
        "source": label,
        "notes": _dropped_note(dropped, cohort) + notes,
        "observations": table,
    }
    return frame


def load_individuals(
    source: Source,
    *,
    schema: str = "individuals",
    columns: Mapping[str, Any] | None = None,
    sep: str | None = None,
    decimal: str = ".",
) -> pd.DataFrame:
    """Read one-row-per-person data and validate it against ``data_schemas/individuals.schema.json``.

    Parameters
    ----------
    source : str, Path or DataFrame
        A ``.csv`` or ``.parquet`` file, or a DataFrame (copied, never modified).
    schema : str
        Schema name in ``data_schemas/`` or a path to a Table Schema JSON file.
    columns : mapping, optional
        Role -> column, e.g. ``{"unit": "person_id", "treat": "treated",
        "covariates": ["age", "sex"], "outcome": "employed_12m"}``.
    sep : str, optional
        Field separator of a CSV file; by default sniffed (comma, semicolon or tab).
    decimal : str
        Decimal mark of a CSV file's numbers: ``","`` for files written the Danish,
        Swedish or Finnish way (``2,5``), usually with ``sep=";"``.

    Returns
    -------
    pandas.DataFrame
        The validated data with the file's own column names; ``treat`` as 0/1
        integers. ``frame.attrs["evaluator"]`` holds the resolved mapping.

    Raises
    ------
    DataError
        Listing every problem found (missing columns, wrong types, missing
        covariate values, duplicate ids, no treated or no comparison units ...).

    Examples
    --------
    >>> from evaluator import simulate
    >>> sim = simulate.employment_sib(n_pool=1_000, seed=1)
    >>> people = load_individuals(sim.data, columns=sim.columns)
    >>> int(people["treated"].sum())
    300
    """
    frame, roles, label, problems = _load(source, schema, columns, sep=sep, decimal=decimal)
    if "unit" in roles:
        problems.extend(duplicate_rows(frame, [roles["unit"]]))
    treat = roles.get("treat")
    counts = frame[treat].value_counts() if treat is not None else pd.Series(dtype=int)
    for value, name in ((1, "treated"), (0, "comparison")):
        if treat is not None and counts.get(value, 0) == 0:
            problems.append(
                Problem(
                    f"there are no {name} units ({treat} == {value})",
                    column=treat,
                    hint="a matched comparison needs both treated units and potential comparisons",
                )
            )
    _weight_rules(frame, roles, problems)
    _raise(problems, roles, label)
    frame[treat] = frame[treat].astype("int64")
    frame.attrs["evaluator"] = {"schema": schema, "columns": roles, "dropped": {}, "source": label, "notes": []}
    return frame
