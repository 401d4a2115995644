"""Fuzzing the loaders and the batch-file parser with the malformed files in ``tests/fuzz/``.

Every file must end in a :class:`evaluator.DataError` (data) or
:class:`evaluator.batch.BatchError` (batch files) whose message names the problem,
never a traceback from deep inside pandas, pyarrow or PyYAML, and never a hang: each
case runs under a ``signal.alarm`` guard (a hang guard, not a speed assertion).
``tests/fuzz/README.md`` says what is wrong with each file.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from evaluator import DataError, load_individuals, load_panel

FUZZ = Path(__file__).resolve().parent / "fuzz"
PANEL = {"unit": "unit", "time": "year", "outcome": "y", "cohort": "g", "cluster": "muni"}
PEOPLE = {"unit": "person", "treat": "treated", "covariates": ["age"], "outcome": "employed"}
SWITCH = {"unit": "unit", "time": "year", "outcome": "y", "treatment": "d"}
HANG_SECONDS = 20


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under test swallows it."""


@pytest.fixture(autouse=True)
def hang_guard():
    if sys.platform == "win32":  # no SIGALRM
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"no answer within {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# file, loader columns, substring the message must contain
DATA_CASES = [
    # encodings and not-text
    ("latin1.csv", PANEL, "not UTF-8 text"),
    ("utf16_bom.csv", PANEL, "UTF-16 text, not UTF-8"),
    ("utf32_bom.csv", PANEL, "UTF-32 text, not UTF-8"),
    ("invalid_utf8.csv", PANEL, "not UTF-8 text (invalid continuation byte"),
    ("binary.csv", PANEL, "not UTF-8 text"),
    ("parquet_named.csv", PANEL, "Parquet file with a text extension"),
    ("nul_bytes.csv", PANEL, "column 'year': time must be numeric"),
    ("html_not_csv.csv", PANEL, "the data have no rows"),
    # NaN, inf, strings, huge numbers, mixed types
    ("nan_outcome.csv", PANEL, "column 'y': 1 missing value(s) in required role 'outcome'"),
    ("inf_outcome.csv", PANEL, "column 'y': outcome must be numeric but has 2 non-numeric"),
    ("inf_period.csv", PANEL, "column 'year': time must be numeric"),
    ("string_in_outcome.csv", PANEL, "'abc', '1.2.3'"),
    ("string_in_period.csv", PANEL, "'twenty'"),
    ("string_in_cohort.csv", PANEL, "column 'g': cohort must be numeric"),
    ("decimal_comma.csv", PANEL, "non-numeric"),
    ("mixed_types_period.csv", PANEL, "'2002-01'"),
    ("huge_period.csv", PANEL, "column 'year': time has values too large"),
    ("huge_outcome.csv", PANEL, "column 'y': outcome must be numeric"),
    ("dates_as_periods.csv", PANEL, "'2001-01-01'"),
    ("all_outcomes_missing.csv", PANEL, "9 missing value(s) in required role 'outcome'"),
    # column names
    ("unicode_columns.csv", PANEL, "the file's columns are ['ユニット'"),
    ("unicode_nfd_column.csv", PANEL, "column 'muni': missing column for role 'cluster'"),
    ("duplicate_columns.csv", PANEL, "duplicate column names ['y']"),
    ("blank_header.csv", PANEL, "column 'unit': missing column for role 'unit'"),
    ("missing_role_column.csv", PANEL, "missing column for role 'unit'"),
    # shape and parsing
    ("empty.csv", PANEL, "the file is empty (0 bytes)"),
    ("whitespace_only.csv", PANEL, "could not be read"),
    ("header_only.csv", PANEL, "the data have no rows"),
    ("ragged_rows.csv", PANEL, "Expected 5 fields in line 11, saw 7"),
    ("quoted_newline.csv", PANEL, "could not be read: ParserError"),
    ("unterminated_quote.csv", PANEL, "could not be read: ParserError: unexpected end of data"),
    # panel rules
    ("one_unit.csv", PANEL, "the panel has only 1 unit"),
    ("no_treated_units.csv", PANEL, "there are no treated units"),
    ("negative_periods.csv", PANEL, "period 0 is observed, so cohort 0 cannot mean never treated"),
    ("treatment_switches_off.csv", SWITCH, "column 'd': treatment switches off"),
    ("cohort_changes.csv", PANEL, "column 'g': the cohort changes over time within 1 unit"),
    ("duplicate_unit_period.csv", PANEL, "duplicate unit-period rows"),
    ("cluster_changes.csv", PANEL, "column 'muni': the cluster changes within 1 unit"),
    ("cohort_outside_periods.csv", PANEL, "cohort values outside the observed periods"),
    # one row per person
    ("ind_no_treated.csv", PEOPLE, "there are no treated units (treated == 1)"),
    ("ind_treat_not_binary.csv", PEOPLE, "treat must be one of [0, 1], found 2"),
    ("ind_duplicate_ids.csv", PEOPLE, "duplicate unit ids"),
    ("ind_nan_covariate.csv", PEOPLE, "column 'age': 1 missing value(s)"),
    # Parquet
    ("truncated.parquet", PANEL, "could not be read as Parquet"),
    ("zero_byte.parquet", PANEL, "the file is empty (0 bytes)"),
    ("csv_named.parquet", PANEL, "could not be read as Parquet"),
    ("wrong_types.parquet", PANEL, "column 'y': outcome must be numeric but has 1 non-numeric value(s) ('abc')"),
    ("nested_list_unit.parquet", PANEL, "column 'unit': nested values (ndarray) in role 'unit'"),
    ("struct_outcome.parquet", PANEL, "column 'y': nested values (dict) in role 'outcome'"),
    ("duplicate_columns.parquet", PANEL, "duplicate column names ['y']"),
    ("inf_nan_outcome.parquet", PANEL, "column 'y': outcome must be numeric"),
    ("datetime_periods.parquet", PANEL, "column 'year': time must be numeric"),
]


@pytest.mark.parametrize(("name", "columns", "expected"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_malformed_data_file_gives_a_named_data_error(name, columns, expected):
    path = FUZZ / name
    loader = load_individuals if columns is PEOPLE else load_panel
    with pytest.raises(DataError) as info:
        loader(path, columns=columns)
    message = str(info.value)
    assert expected in message, message
    assert info.value.source == str(path), "the message names the file"
    # No chained traceback from pandas or pyarrow ("During handling of the above exception ...").
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_corpus_is_complete_and_documented():
    files = sorted(p.name for p in FUZZ.iterdir() if p.name != "README.md")
    readme = (FUZZ / "README.md").read_text(encoding="utf-8")
    tested = {c[0] for c in DATA_CASES} | {c[0] for c in BATCH_CASES} | set(BATCH_HOSTILE)
    assert len(files) >= 30 + 8
    assert set(files) == tested, set(files) ^ tested
    for name in files:
        assert f"`{name}`" in readme, f"{name} is not described in tests/fuzz/README.md"
        assert (FUZZ / name).stat().st_size < 20_000, f"{name} is too big for the corpus"


def test_a_million_columns(tmp_path):
    n = 1_000_000
    path = tmp_path / "wide.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(",".join(f"c{i}" for i in range(n)) + "\n")
        fh.write(",".join("1" for _ in range(n)) + "\n")
        fh.write(",".join("2" for _ in range(n)) + "\n")
    with pytest.raises(DataError, match=r"the file has 1,000,000 columns; evaluator reads at most"):
        load_panel(path, columns={"unit": "c0", "time": "c1", "outcome": "c2", "cohort": "c3"})


def test_a_million_columns_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 30_000  # wide enough to be refused from the footer alone, small enough to write quickly
    table = pa.table({f"c{i}": pa.array([1, 2]) for i in range(n)})
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"the file has 30,000 columns"):
        load_panel(path, columns={"unit": "c0", "time": "c1", "outcome": "c2", "cohort": "c3"})


def test_duplicate_columns_in_a_dataframe():
    import pandas as pd

    frame = pd.DataFrame([[1, 2001, 1.0, 2.0, 0, "A"]], columns=["unit", "year", "y", "y", "g", "muni"])
    with pytest.raises(DataError, match=r"duplicate column names \['y'\]"):
        load_panel(frame, columns=PANEL)


# -- batch files -------------------------------------------------------------------------------------------------------
BATCH_CASES = [
    ("batch_tabs.yaml", "YAML syntax error at line 2, column 1: found character '\\t'"),
    ("batch_unclosed_bracket.yaml", "YAML syntax error at line 5"),
    ("batch_python_object.yaml", "could not determine a constructor for the tag"),
    ("batch_python_name.yaml", "could not determine a constructor for the tag"),
    ("batch_top_level_list.yaml", "the top level must be a mapping"),
    ("batch_scalar.yaml", "the top level must be a mapping"),
    ("batch_wrong_types.yaml", "defaults: expected a mapping, got [1, 2]"),
    ("batch_non_utf8.yaml", "cannot be read"),
    ("batch_empty.yaml", "the batch file is empty"),
    ("batch_duplicate_anchor_merge.yaml", "unknown field 'colour'"),
]
#: Cases that once hung or bloated load_batch: an alias bomb (its repr was put into the message) and a grid
#: of 10**6 combinations (expanded before any check). Both must now end fast in a short BatchError.
BATCH_HOSTILE = {
    "batch_billion_laughs.yaml": "expected a mapping",
    "batch_grid_explosion.yaml": "more than the 10,000",
}


@pytest.fixture
def batch_module():
    return pytest.importorskip("evaluator.runner.batch")


@pytest.mark.parametrize(("name", "expected"), BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_malformed_batch_file_gives_a_batch_error(batch_module, name, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a YAML payload would write its marker
    with pytest.raises(batch_module.BatchError) as info:
        batch_module.load_batch(FUZZ / name)
    message = str(info.value)
    assert expected in message, message
    assert len(message) < 5_000, "the message stays readable"
    assert not (tmp_path / "fuzz_hacked_marker").exists(), "a YAML tag executed code"


@pytest.mark.parametrize("name", sorted(BATCH_HOSTILE))
def test_hostile_batch_files_end_fast_in_a_short_error(batch_module, name):
    signal.alarm(5)  # a hang guard, not a timing assertion
    try:
        with pytest.raises(batch_module.BatchError) as info:
            batch_module.load_batch(FUZZ / name)
    finally:
        signal.alarm(0)
    message = str(info.value)
    assert BATCH_HOSTILE[name] in message, message[:500]
    assert len(message) < 5_000, f"a {len(message):,}-character message"
