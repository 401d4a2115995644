"""Panels out of core: passes over a Parquet file, a folder of them or a pyarrow Dataset, in shards of whole units.

An estimator that cannot hold the frame (a register extract of 100 million rows) reads
it here instead of through :func:`evaluator.data.load.load_panel`:

- :func:`open_dataset` opens the source (a ``.parquet`` file, a folder of Parquet files
  read in the sorted order of their paths, or a ``pyarrow.dataset.Dataset``) and checks
  that the columns exist and are numbers where they must be;
- :func:`periods` reads the time column alone (one cheap columnar pass) for the set of periods;
- :func:`unit_blocks` streams the needed columns as Arrow record batches and cuts them
  into :class:`UnitBlock` s of whole units: the rows of a unit split across two batches
  (or files) are carried over to the next block. The rows must come **sorted by unit,
  then period**; a row out of order stops the pass with a :class:`~evaluator.errors.DataError`
  naming it and saying how to sort;
- :func:`check_block` applies the panel rules to one block (missing and infinite values,
  duplicate unit-period rows, the cohort and the cluster constant within a unit, units
  missing periods) and gives the layout of its valid, complete units (a units x periods
  index), so the estimator's statistics are computed in the same pass;
  :func:`check_block_rows` is its twin for an unbalanced panel used whole (every unit checked,
  every valid unit's rows placed by period);
  :class:`PanelChecks` collects the blocks' findings in order and raises one DataError
  listing every problem, worded as :mod:`evaluator.data.validate` words them (data rows
  counted from 1 over the whole source, unit ids);
- :func:`ordered_map` runs a function over the blocks in threads (numpy releases the GIL
  on the large array operations) and yields the results in block order, so that what is
  combined, and hence every number, does not depend on which thread finished first;
- :class:`BlockPasses` (:func:`map_unit_blocks` for one pass) maps a block reducer over the
  source either so, in this process, or on a Dask cluster (a ``distributed.Client``): the source
  in parts of contiguous rows (Parquet row groups, a Dask DataFrame's partitions), a task per part
  reducing its blocks and sending back the raw rows of its first and last units, which may
  straddle two parts; the client checks the order across parts, joins those units and reduces
  them itself, and gives every result in source order. Dask is imported only then.

Nothing here holds more than a few blocks at a time.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from evaluator.data.validate import infinite_problem, missing_problem
from evaluator.errors import DataError, Problem, format_examples

__all__ = [
    "ROW_NUMBER",
    "BlockPasses",
    "DaskFrame",
    "PanelChecks",
    "UnitBlock",
    "BlockLayout",
    "check_block",
    "check_block_rows",
    "RowLayout",
    "RowNumbered",
    "dask_client",
    "is_dataset_source",
    "map_unit_blocks",
    "open_dask_frame",
    "open_dataset",
    "ordered_map",
    "periods",
    "unit_blocks",
]

#: Rows per record batch read (10 MB for five columns of 8 bytes): larger batches were no faster on 20 million
#: rows and raised the peak memory (the Parquet reader's row groups dominate what remains).
BATCH_ROWS = 1 << 18
#: How many offending values a problem keeps to name (as :func:`evaluator.errors.format_examples` shows).
_SHOWN = 5

T = TypeVar("T")
R = TypeVar("R")


# -- opening -----------------------------------------------------------------------------------------------------------
def is_dataset_source(data: Any) -> bool:
    """Whether ``data`` is read out of core: a path (str or os.PathLike), a ``pyarrow.dataset.Dataset`` or Table.

    Examples
    --------
    >>> import pandas as pd
    >>> is_dataset_source("panel.parquet"), is_dataset_source(pd.DataFrame())
    (True, False)
    """
    if isinstance(data, (str, os.PathLike)) or hasattr(data, "__evaluator_dataset__"):
        return True  # __evaluator_dataset__: a validated PanelSource (evaluator.data.panel_source)
    module = type(data).__module__ or ""
    return module.startswith("pyarrow") and hasattr(data, "to_batches") and hasattr(data, "schema")


def is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (recognised without importing dask)."""
    return (type(data).__module__ or "").startswith("dask") and hasattr(data, "npartitions")


def open_dataset(source: Any) -> tuple[Any, str]:
    """The ``pyarrow.dataset.Dataset`` of ``source`` and the label naming it in messages.

    A folder is read as the Parquet files under it (``*.parquet``, ``*.pq``, recursively)
    in the sorted order of their paths, so a panel split into files by ranges of units
    stays sorted by unit.
    """
    import pyarrow.dataset as ds

    if hasattr(source, "__evaluator_dataset__"):  # a PanelSource: its rows, less the units load_panel drops
        return source.__evaluator_dataset__()
    if not isinstance(source, (str, os.PathLike)):
        import pyarrow as pa

        if isinstance(source, (pa.Table, pa.RecordBatch)):
            return ds.dataset(source), "the table"
        return source, "the dataset"
    path = Path(source)
    label = str(path)
    if not path.exists():
        raise DataError([Problem(f"file not found: {path}", hint="check the path and the working directory")])
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in {".parquet", ".pq"} and p.is_file())
        if not files:
            raise DataError(
                [Problem(f"{path} holds no Parquet files", hint="give a .parquet file or a folder of them")],
                source=label,
            )
    elif path.suffix.lower() in {".parquet", ".pq"}:
        files = [str(path)]
    else:
        raise DataError(
            [
                Problem(
                    f"out of core, evaluator reads Parquet files, not '{path.suffix}'",
                    hint="convert the file to Parquet (pandas: pd.read_csv(...).to_parquet(...), or pyarrow's CSV "
                    "reader for a large file), or read it into a DataFrame with load_panel",
                )
            ],
            source=label,
        )
    try:
        return ds.dataset(files, format="parquet"), label
    except Exception as exc:
        raise DataError(
            [
                Problem(
                    f"the data could not be read as Parquet ({type(exc).__name__}: {exc})",
                    hint="the file is truncated or corrupt, or not Parquet at all: export it again",
                )
            ],
            source=label,
        ) from None


#: The column :class:`RowNumbered` adds: each row's position in the data (0-based), a unit id of its own.
ROW_NUMBER = "__evaluator_row__"


class RowNumbered:
    """A pyarrow Dataset read with each row's position added as :data:`ROW_NUMBER`: repeated cross-sections out of
    core, where every row is its own observation, are read as a panel of one-row units (ids increasing, so sorted).

    It answers what the passes in this process ask of a Dataset (``schema``, ``to_batches`` in order); the positions
    are those of the rows in the order read, as ``numpy.arange`` numbers a frame's rows in memory.
    """

    def __init__(self, dataset: Any) -> None:
        import pyarrow as pa

        self.dataset = dataset
        self.schema = dataset.schema.append(pa.field(ROW_NUMBER, pa.int64()))

    def to_batches(self, *, columns: list[str], **kw: Any) -> Iterator[Any]:
        import pyarrow as pa

        want = [c for c in columns if c != ROW_NUMBER]
        offset = 0
        for batch in self.dataset.to_batches(columns=want, **kw):
            if ROW_NUMBER in columns:
                numbers = pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))
                batch = batch.append_column(ROW_NUMBER, numbers).select(columns)
            offset += batch.num_rows
            yield batch


def check_columns(
    dataset: Any, roles: Mapping[str, str], *, numeric: Iterable[str] = (), label: str | None = None
) -> None:
    """Raise one DataError if a role's column is missing, or a ``numeric`` one is not numbers (from the schema)."""
    import pyarrow as pa

    schema = dataset.schema
    names = [n for n in schema.names if n != "__index_level_0__"]
    have = format_examples(map(repr, names), limit=12)
    problems = [
        Problem(
            f"column not found ({role}={col!r})",
            column=col,
            hint=f"pass the column names of your data; the data have {have}",
        )
        for role, col in roles.items()
        if col not in names
    ]
    if problems:
        raise DataError(problems, source=label)
    for col in dict.fromkeys(numeric):
        kind = schema.field(col).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            problems.append(Problem(f"must be numeric; found type {kind}", column=col, hint="convert it to numbers"))
    if problems:
        raise DataError(problems, source=label)


# -- passes ------------------------------------------------------------------------------------------------------------
def _numpy(column: Any) -> np.ndarray:
    """An Arrow column as numpy: numbers as float64 (nulls NaN) unless integers without nulls; others as objects."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.dictionary_decode()
        kind = column.type
    if pa.types.is_integer(kind) and column.null_count == 0:
        return column.to_numpy()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return column.to_numpy(zero_copy_only=False)


def periods(dataset: Any, time: str, *, threads: bool = True, executor: Any = None) -> np.ndarray:
    """The distinct finite periods of the time column, sorted (a pass over that column only).

    For a :class:`DaskFrame` the pass runs on ``executor`` (a ``distributed.Client``, or dask's
    default scheduler) and counts the partitions' rows too.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(dataset, DaskFrame):
        return _frame_periods(dataset, time, dask_client(executor))
    parts = [pc.unique(b.column(0)) for b in dataset.to_batches(columns=[time], use_threads=threads)]
    if not parts:
        return np.empty(0)
    values = _numpy(pc.unique(pa.chunked_array(parts).combine_chunks()))
    values = values.astype(np.float64)
    return np.sort(values[np.isfinite(values)])


@dataclass
class UnitBlock:
    """Rows of whole units, in the order of the source.

    ``columns`` maps each column to its values. ``rows`` places them in the whole source
    (files in order, 0-based) for messages that count data rows from 1: the position of the
    first row when the rows are contiguous there, else one position per row.
    """

    columns: dict[str, np.ndarray]
    rows: int | np.ndarray
    index: int = 0

    def positions(self, which: np.ndarray) -> np.ndarray:
        """0-based source positions of the rows ``which`` (a boolean mask or indices)."""
        idx = np.flatnonzero(which) if np.asarray(which).dtype == bool else np.asarray(which)
        return self.rows[idx] if isinstance(self.rows, np.ndarray) else self.rows + idx


def _slice_rows(rows: int | np.ndarray, start: int, stop: int | None = None) -> int | np.ndarray:
    if isinstance(rows, np.ndarray):
        return rows[start:stop]
    return rows + start


def _join_rows(a: int | np.ndarray, na: int, b: int | np.ndarray, nb: int) -> int | np.ndarray:
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray) and a + na == b:
        return a
    full = [x if isinstance(x, np.ndarray) else np.arange(x, x + m, dtype=np.int64) for x, m in ((a, na), (b, nb))]
    return np.concatenate(full)


def _position(rows: int | np.ndarray, i: int) -> int:
    return int(rows[i]) if isinstance(rows, np.ndarray) else rows + i


def _sort_error(unit: str, time: str, u_prev: Any, row_prev: int, u_next: Any, row_next: int, label: str | None):
    return DataError(
        [
            Problem(
                f"the rows are not sorted by unit: unit {u_next} (data row {row_next + 1}) comes after "
                f"unit {u_prev} (data row {row_prev + 1})",
                column=unit,
                hint="out of core the rows must come sorted by unit, then period: sort the file once "
                f"(e.g. pyarrow: table.sort_by([({unit!r}, 'ascending'), ({time!r}, 'ascending')]), or DuckDB or "
                "Polars for a file larger than memory) or read it into a DataFrame",
            )
        ],
        source=label,
    )


def _leading(u: np.ndarray, value: Any) -> int:
    """How many rows at the head of (sorted) ``u`` equal ``value``."""
    if np.issubdtype(u.dtype, np.number):
        return int(np.searchsorted(u, value, side="right"))
    other = np.flatnonzero(u != value)
    return int(other[0]) if other.size else len(u)


def unit_blocks(
    dataset: Any,
    roles: Mapping[str, str],
    *,
    batch_rows: int = BATCH_ROWS,
    threads: bool = True,
    missing_units: list[int] | None = None,
    label: str | None = None,
    first_row: int = 0,
) -> Iterator[UnitBlock]:
    """Stream the role columns of ``dataset`` as blocks of whole units (a unit split across batches is carried over).

    A block is a view of one record batch (no copy) except where a unit straddles two
    batches: its rows are joined into a small block of their own. Rows without a unit id
    cannot be placed: their 0-based positions are appended to ``missing_units`` (for the
    caller's one DataError) and the rows left out. Unit ids must not decrease from one row
    to the next; the first that does raises a DataError. ``first_row`` is the source position
    of ``dataset``'s first row, when it is a part of a larger source (messages count over the whole).
    """
    unit = roles["unit"]
    time = roles.get("time", "time")
    names = list(dict.fromkeys(roles.values()))
    carry: dict[str, np.ndarray] | None = None
    carry_rows: int | np.ndarray = first_row
    offset = first_row
    index = 0
    batches = dataset.to_batches(
        columns=names, batch_size=batch_rows, use_threads=threads, batch_readahead=2, fragment_readahead=1
    )
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        cols = {c: _numpy(batch.column(i)) for i, c in enumerate(batch.schema.names)}
        rows: int | np.ndarray = offset
        offset += n
        ucol = batch.column(batch.schema.names.index(unit))
        nan_ids = np.issubdtype(cols[unit].dtype, np.floating) and bool(np.isnan(cols[unit]).any())
        if ucol.null_count or nan_ids:
            null = np.asarray(ucol.is_null(nan_is_null=True))
            if missing_units is not None:
                missing_units.extend((rows + np.flatnonzero(null)).tolist())
            keep = ~null
            cols = {c: v[keep] for c, v in cols.items()}
            rows = rows + np.flatnonzero(keep)
            if not keep.any():
                continue
        u = cols[unit]
        down = np.flatnonzero(u[1:] < u[:-1])
        if down.size:
            i = int(down[0])
            raise _sort_error(unit, time, u[i], _position(rows, i), u[i + 1], _position(rows, i + 1), label)
        if carry is not None:
            last = carry[unit][-1]
            if u[0] < last:
                raise _sort_error(
                    unit, time, last, _position(carry_rows, len(carry[unit]) - 1), u[0], _position(rows, 0), label
                )
            head = _leading(u, last)
            nc = len(carry[unit])
            if head == len(u):  # the carried unit fills this batch too
                carry = {c: np.concatenate([carry[c], v]) for c, v in cols.items()}
                carry_rows = _join_rows(carry_rows, nc, rows, head)
                continue
            joined = {c: np.concatenate([carry[c], v[:head]]) for c, v in cols.items()}
            yield UnitBlock(joined, _join_rows(carry_rows, nc, rows, head), index)
            index += 1
            cols = {c: v[head:] for c, v in cols.items()}
            rows = _slice_rows(rows, head)
            u = cols[unit]
        # the last unit may continue in the next batch: carry its rows over
        cut = len(u) - _trailing(u)
        if cut > 0:
            yield UnitBlock({c: v[:cut] for c, v in cols.items()}, _slice_rows(rows, 0, cut), index)
            index += 1
        carry = {c: v[cut:] for c, v in cols.items()}
        carry_rows = _slice_rows(rows, cut)
    if carry is not None and len(carry[unit]):
        yield UnitBlock(carry, carry_rows, index)


def _trailing(u: np.ndarray) -> int:
    """How many rows at the tail of (sorted) ``u`` equal its last value."""
    if np.issubdtype(u.dtype, np.number):
        return len(u) - int(np.searchsorted(u, u[-1], side="left"))
    other = np.flatnonzero(u != u[-1])
    return len(u) - (int(other[-1]) + 1 if other.size else 0)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, threads: int = 1) -> Iterator[R]:
    """``map(fn, items)`` in ``threads`` threads, results in the order of ``items``, at most 2 x threads in flight."""
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -- passes on a Dask cluster -----------------------------------------------------------------------------------------
#: Parts per worker thread on a cluster: several, so that a slow worker does not hold up the pass, few enough
#: that each task's fixed cost (tens of ms, and two units' raw rows sent back) stays small beside its reading.
PARTS_PER_THREAD = 3


def dask_client(executor: Any) -> Any | None:
    """The ``distributed.Client`` that ``executor`` names, or None for this process; a ValueError naming it otherwise.

    ``executor`` is None, a ``distributed.Client`` or an object holding one as ``.client`` (the
    batch runner's Dask executor). It is recognised by its class, so dask is not imported here.

    Examples
    --------
    >>> dask_client(None) is None
    True
    >>> dask_client("local:2")
    Traceback (most recent call last):
    ...
    ValueError: executor='local:2' is not allowed; pass None (threads in this process) or a dask.distributed Client ...
    """
    if executor is None:
        return None
    for candidate in (executor, getattr(executor, "client", None)):
        if any(c.__name__ == "Client" and c.__module__.startswith("distributed") for c in type(candidate).__mro__):
            return candidate
    shown = repr(executor) if isinstance(executor, (str, int, float)) else f"a {type(executor).__name__}"
    raise ValueError(
        f"executor={shown} is not allowed; pass None (threads in this process) or a dask.distributed Client "
        "(distributed.Client('tcp://host:8786'), or Client(LocalCluster(...))): the same cluster a batch runs on"
    )


@dataclass
class DaskFrame:
    """A Dask DataFrame read out of core: each partition is one part, its rows sorted by unit then period, and the
    partitions in order (a unit may straddle two). ``schema`` is the Arrow schema of its meta, for
    :func:`check_columns`; ``lengths``, the rows of each partition, are counted once (by :func:`periods`)."""

    frame: Any
    schema: Any
    lengths: list[int] | None = None

    def project(self, columns: Iterable[str]) -> DaskFrame:
        """The frame of these columns only (each pass then reads just those).

        Every pass over a Dask DataFrame goes through the same projected frame: dask may fuse the
        partitions of a projection of a Parquet read, so the partitions of another projection (the
        time column alone, say) need not be the same rows.
        """
        names = list(dict.fromkeys(columns))
        return DaskFrame(self.frame[names], self.schema)


def open_dask_frame(frame: Any) -> tuple[DaskFrame, str]:
    """A Dask DataFrame as a source of :func:`map_unit_blocks` and the label naming it in messages.

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> source, label = open_dask_frame(dd.from_pandas(pd.DataFrame({"id": [1, 1, 2], "y": [0.5, 1.0, 2.0]}), 2))
    >>> source.schema.names, label
    (['id', 'y'], 'the Dask DataFrame (2 partitions)')
    """
    import pyarrow as pa

    return DaskFrame(frame, pa.Schema.from_pandas(frame._meta, preserve_index=False)), (
        f"the Dask DataFrame ({frame.npartitions} partitions)"
    )


def _length_and_periods(frame: Any, time: str) -> tuple[int, np.ndarray]:
    """One partition's rows and distinct finite periods (as :func:`periods` takes them: floats)."""
    x = frame[time].to_numpy(dtype=np.float64, na_value=np.nan)
    x = np.unique(x)
    return len(frame), x[np.isfinite(x)]


def _dask_compute(tasks: list[Any], client: Any | None) -> list[Any]:
    """Dask delayed ``tasks`` computed on ``client``, or on dask's default scheduler; results in order."""
    if client is not None:
        return client.gather(client.compute(tasks))
    import dask

    return list(dask.compute(*tasks))


def _frame_periods(source: DaskFrame, time: str, client: Any | None) -> np.ndarray:
    """The periods of a Dask DataFrame, and its partitions' lengths on the way (one pass over the time column)."""
    import dask

    # the partitions of the frame itself, not of its time column: those are the parts the passes read
    found = _dask_compute([dask.delayed(_length_and_periods)(d, time) for d in source.frame.to_delayed()], client)
    source.lengths = [n for n, _ in found]
    values = np.unique(np.concatenate([v for _, v in found])) if found else np.empty(0)
    return values


@dataclass
class _Part:
    """Contiguous rows of the source, read by one task: row groups of Parquet files, or a table (a slice, a partition).

    ``first_row`` is the position of its first row in the whole source, so messages name global data rows.
    """

    first_row: int
    rows: int
    pieces: tuple[tuple[str, tuple[int, ...]], ...] = ()
    filesystem: Any = None
    schema: Any = None
    table: Any = None

    def to_batches(self, *, columns: list[str], batch_size: int, use_threads: bool = True, **_: Any) -> Iterator[Any]:
        """The part's record batches, as ``Dataset.to_batches`` gives them (all :func:`unit_blocks` asks of it)."""
        if self.table is not None:
            yield from self.table.select(columns).to_batches(max_chunksize=batch_size)
            return
        import pyarrow.dataset as ds

        # one fragment per row group, scanned as a Dataset: a fragment of several row groups yields its batches out
        # of order (pyarrow 26), a Dataset's scan keeps them in order as the in-process pass does
        fmt = ds.ParquetFileFormat()
        fragments = [
            fmt.make_fragment(path, filesystem=self.filesystem, row_groups=[g])
            for path, groups in self.pieces
            for g in groups
        ]
        dataset = ds.FileSystemDataset(fragments, self.schema, fmt, self.filesystem)
        yield from dataset.to_batches(
            columns=columns, batch_size=batch_size, use_threads=use_threads, batch_readahead=2, fragment_readahead=1
        )


@dataclass
class _PartOutput:
    """What a part's task sends back: ``fn`` of its inner blocks in order, the raw rows of its first unit (``head``)
    and of its last (``tail``; None when the part holds one unit), its rows without a unit id, and a DataError's
    problems (an exception's own pickling would lose them) if the part stopped on one."""

    results: list[Any] = field(default_factory=list)
    head: UnitBlock | None = None
    tail: UnitBlock | None = None
    missing: list[int] = field(default_factory=list)
    error: tuple[tuple[Problem, ...], str | None] | None = None


def _take(block: UnitBlock, start: int, stop: int | None = None) -> UnitBlock:
    return UnitBlock({c: v[start:stop] for c, v in block.columns.items()}, _slice_rows(block.rows, start, stop))


def _join(a: UnitBlock, b: UnitBlock) -> UnitBlock:
    """One unit's rows from two parts, as :func:`unit_blocks` joins a unit split across two batches."""
    na, nb = len(next(iter(a.columns.values()))), len(next(iter(b.columns.values())))
    columns = {c: np.concatenate([a.columns[c], b.columns[c]]) for c in a.columns}
    return UnitBlock(columns, _join_rows(a.rows, na, b.rows, nb))


def _run_part(
    fn: Callable[[UnitBlock], Any],
    part: _Part,
    roles: Mapping[str, str],
    batch_rows: int,
    label: str | None,
    table: Any = None,
) -> _PartOutput:
    """A task: ``fn`` over the part's blocks of whole units, but its first and last units' rows sent back raw (either
    may continue in the neighbouring part; the client completes and reduces them)."""
    if table is not None:
        part = _Part(part.first_row, part.rows, table=table)
    unit = roles["unit"]
    out = _PartOutput()
    pending: UnitBlock | None = None
    try:
        blocks = unit_blocks(
            part, roles, batch_rows=batch_rows, missing_units=out.missing, label=label, first_row=part.first_row
        )
        for block in blocks:
            if out.head is None:
                u = block.columns[unit]
                first = _leading(u, u[0])
                out.head = _take(block, 0, first)
                if first == len(u):
                    continue
                block = _take(block, first)
            if pending is not None:
                out.results.append(fn(pending))
            pending = block
        if pending is not None:
            u = pending.columns[unit]
            cut = len(u) - _trailing(u)
            if cut:
                out.results.append(fn(_take(pending, 0, cut)))
            out.tail = _take(pending, cut)
    except DataError as exc:
        out.error = (exc.problems, exc.source)
    return out


def _run_frame_part(
    frame: Any,
    fn: Callable[[UnitBlock], Any],
    part: _Part,
    roles: Mapping[str, str],
    batch_rows: int,
    label: str | None,
) -> _PartOutput:
    """A task on one partition of a Dask DataFrame (a pandas frame by then): as Arrow, then :func:`_run_part`."""
    import pyarrow as pa

    names = list(dict.fromkeys(roles.values()))
    return _run_part(fn, part, roles, batch_rows, label, pa.Table.from_pandas(frame[names], preserve_index=False))


def _groups(sizes: list[int], n: int) -> list[range]:
    """Consecutive items (row groups of these sizes) in at most ``n`` groups of about equal rows."""
    total = sum(sizes)
    out: list[range] = []
    start = acc = 0
    for i, s in enumerate(sizes):
        acc += s
        if i + 1 < len(sizes) and acc >= total * (len(out) + 1) / n:
            out.append(range(start, i + 1))
            start = i + 1
    out.append(range(start, len(sizes)))
    return out


class BlockPasses:
    """Passes over the blocks of whole units of a source: in this process, or on a Dask cluster in parts.

    ``source`` is what :func:`open_dataset` gives (a pyarrow Dataset) or :func:`open_dask_frame`
    (a Dask DataFrame). In this process (``executor`` None, a Dataset) :meth:`map` is
    :func:`ordered_map` over :func:`unit_blocks`. On a ``distributed.Client`` the source is split
    into parts of contiguous rows (Parquet row groups, grouped into about :data:`PARTS_PER_THREAD`
    x the cluster's threads parts, their row offsets from the files' metadata; a Table's slices,
    sent with the tasks; a Dask DataFrame's partitions, their lengths counted first): one task per
    part reduces its inner blocks, and the client checks the order of the units across parts,
    joins a unit split between two parts and reduces the joined blocks itself. Without a client a
    Dask DataFrame's parts are computed by dask's default scheduler. Either way the results come
    in the order of the source, so combining them gives the same numbers up to rounding.
    The parts are planned once, at the first pass.

    Examples
    --------
    >>> import pyarrow as pa
    >>> table = pa.table({"id": [1, 1, 2, 2, 3], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> dataset, _ = open_dataset(table)
    >>> passes = BlockPasses(dataset, {"unit": "id", "outcome": "y"}, batch_rows=3)
    >>> [float(b.columns["y"].sum()) for b in passes.map(lambda b: b)]
    [3.0, 7.0, 5.0]
    >>> passes.describe()
    {'executor': 'threads', 'parts': 1}
    """

    def __init__(
        self,
        source: Any,
        roles: Mapping[str, str],
        *,
        batch_rows: int = BATCH_ROWS,
        threads: int = 1,
        executor: Any = None,
        label: str | None = None,
    ) -> None:
        self.source = source
        self.roles = dict(roles)
        self.batch_rows = int(batch_rows)
        self.threads = int(threads)
        self.client = dask_client(executor)
        self.label = label
        self._parts: list[_Part] | None = None
        self._tables: list[Any] = []  # a Table's slices, on the cluster once (futures), for every pass

    @property
    def in_process(self) -> bool:
        """Whether the passes run in this process's threads (no cluster, no Dask DataFrame)."""
        return self.client is None and not isinstance(self.source, DaskFrame)

    def describe(self) -> dict[str, Any]:
        """Which executor runs the passes and in how many parts (for a result's ``info``)."""
        if self.in_process:
            return {"executor": "threads", "parts": 1}
        if self.client is None:
            return {"executor": "dask default scheduler", "parts": len(self.parts())}
        threads = self.client.nthreads()
        address = getattr(self.client.scheduler, "address", None) or "?"
        return {
            "executor": f"dask {address} ({len(threads)} workers, {sum(threads.values())} threads)",
            "parts": len(self.parts()),
        }

    def parts(self) -> list[_Part]:
        """The parts of the source (planned at the first call)."""
        if self._parts is None:
            self._parts = self._plan()
        return self._parts

    def _plan(self) -> list[_Part]:
        import pyarrow.dataset as ds

        threads = sum(self.client.nthreads().values()) if self.client is not None else max(self.threads, 1)
        n = max(1, PARTS_PER_THREAD * threads)
        if isinstance(self.source, DaskFrame):
            if self.source.lengths is None:
                import dask

                delayed = [dask.delayed(len)(d) for d in self.source.frame.to_delayed()]  # the partitions passes read
                self.source.lengths = [int(x) for x in _dask_compute(delayed, self.client)]
            starts = np.concatenate([[0], np.cumsum(self.source.lengths)]).astype(np.int64)
            return [_Part(int(starts[i]), int(m)) for i, m in enumerate(self.source.lengths)]
        dataset = self.source
        if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format, ds.ParquetFileFormat):
            # the row groups of the files in order, from their footers: each part's first row is known before reading
            pieces: list[tuple[str, int, int]] = []
            for fragment in dataset.get_fragments():
                pieces += [(fragment.path, rg.id, rg.num_rows) for rg in fragment.row_groups]
            parts, offset = [], 0
            for group in _groups([p[2] for p in pieces], n):
                by_file: dict[str, list[int]] = {}
                for i in group:
                    by_file.setdefault(pieces[i][0], []).append(pieces[i][1])
                rows = sum(pieces[i][2] for i in group)
                spec = tuple((path, tuple(ids)) for path, ids in by_file.items())
                parts.append(_Part(offset, rows, spec, dataset.filesystem, dataset.schema))
                offset += rows
            return parts
        # a dataset in memory (or of another kind): its rows in slices, each sent to the cluster once
        names = list(dict.fromkeys(self.roles.values()))
        table = dataset.to_table(columns=names)
        size = max(1, -(-table.num_rows // n))
        parts = [_Part(a, min(size, table.num_rows - a)) for a in range(0, table.num_rows, size)]
        slices = [table.slice(p.first_row, p.rows) for p in parts]
        self._tables = [self.client.scatter(s, hash=False) for s in slices] if self.client is not None else slices
        return parts

    def _outputs(self, fn: Callable[[UnitBlock], Any]) -> Iterator[_PartOutput]:
        """The parts' outputs in order (as each arrives; every part is submitted at once)."""
        parts = self.parts()
        args = (self.roles, self.batch_rows, self.label)
        if isinstance(self.source, DaskFrame):
            import dask

            frames = self.source.frame.to_delayed()
            tasks = [dask.delayed(_run_frame_part)(f, fn, p, *args) for f, p in zip(frames, parts, strict=True)]
            if self.client is None:
                yield from dask.compute(*tasks)
                return
            futures = self.client.compute(tasks)
        elif self._tables:
            futures = [
                self.client.submit(_run_part, fn, p, *args, t, pure=False)
                for p, t in zip(parts, self._tables, strict=True)
            ]
        else:
            futures = [self.client.submit(_run_part, fn, p, *args, pure=False) for p in parts]
        for future in futures:
            yield future.result()

    def map(self, fn: Callable[[UnitBlock], R], *, missing_units: list[int] | None = None) -> Iterator[R]:
        """``fn`` of every block of whole units, in source order (rows without a unit id go to ``missing_units``)."""
        if self.in_process:
            blocks = unit_blocks(
                self.source, self.roles, batch_rows=self.batch_rows, missing_units=missing_units, label=self.label
            )
            return ordered_map(fn, blocks, threads=self.threads)
        return self._stitch(fn, self._outputs(fn), missing_units)

    def _stitch(
        self, fn: Callable[[UnitBlock], R], outputs: Iterable[_PartOutput], missing_units: list[int] | None
    ) -> Iterator[R]:
        """The parts' results in order, with the units at their boundaries completed and reduced here."""
        unit, time = self.roles["unit"], self.roles.get("time", "time")
        carry: UnitBlock | None = None  # the last unit seen, which may continue in the next part
        for out in outputs:
            if missing_units is not None:
                missing_units.extend(out.missing)
            head = out.head
            if carry is not None and head is not None:
                last, first = carry.columns[unit][-1], head.columns[unit][0]
                if first < last:  # the check unit_blocks makes between two batches, here between two parts
                    n = len(carry.columns[unit])
                    raise _sort_error(
                        unit, time, last, _position(carry.rows, n - 1), first, _position(head.rows, 0), self.label
                    )
                if first == last:
                    head = _join(carry, head)
                else:
                    yield fn(carry)
                carry = None
            if out.error is not None:
                raise DataError(out.error[0], source=out.error[1])
            if head is None:
                continue
            if out.tail is None:  # the part is one unit: it may go on in the next part too
                carry = head
                continue
            yield fn(head)
            yield from out.results
            carry = out.tail
        if carry is not None:
            yield fn(carry)

    def first_block(self) -> UnitBlock | None:
        """The source's first block of whole units, read here (a constant some reductions take from the data)."""
        if self.in_process:
            return next(unit_blocks(self.source, self.roles, batch_rows=self.batch_rows, label=self.label), None)
        parts = self.parts()
        if isinstance(self.source, DaskFrame):
            import pyarrow as pa

            names = list(dict.fromkeys(self.roles.values()))
            frames = self.source.frame.to_delayed()
            for i, part in enumerate(parts):
                frame = frames[i].compute()[names]
                table = pa.Table.from_pandas(frame, preserve_index=False)
                block = self._first_of(_Part(part.first_row, part.rows, table=table))
                if block is not None:
                    return block
            return None
        for i, part in enumerate(parts):
            if self._tables:
                t = self._tables[i]
                part = _Part(part.first_row, part.rows, table=t.result() if self.client is not None else t)
            block = self._first_of(part)
            if block is not None:
                return block
        return None

    def _first_of(self, part: _Part) -> UnitBlock | None:
        blocks = unit_blocks(part, self.roles, batch_rows=self.batch_rows, label=self.label, first_row=part.first_row)
        return next(blocks, None)


def map_unit_blocks(
    fn: Callable[[UnitBlock], R],
    source: Any,
    roles: Mapping[str, str],
    *,
    batch_rows: int = BATCH_ROWS,
    threads: int = 1,
    executor: Any = None,
    missing_units: list[int] | None = None,
    label: str | None = None,
) -> Iterator[R]:
    """``fn`` of every block of whole units of ``source``, in source order: in threads here, or on a Dask cluster.

    One pass of :class:`BlockPasses` (which see; keep one of those for several passes, so the
    source is split into parts once). ``executor`` is None (``threads`` threads in this process;
    for a Dask DataFrame, dask's default scheduler) or a ``distributed.Client``.

    Examples
    --------
    >>> import pyarrow as pa
    >>> dataset, _ = open_dataset(pa.table({"id": [1, 1, 2, 3, 3], "t": [1, 2, 1, 1, 2]}))
    >>> [len(b.columns["id"]) for b in map_unit_blocks(lambda b: b, dataset, {"unit": "id", "time": "t"}, batch_rows=2)]
    [2, 1, 2]
    """
    passes = BlockPasses(source, roles, batch_rows=batch_rows, threads=threads, executor=executor, label=label)
    return passes.map(fn, missing_units=missing_units)


# -- the panel rules, block by block ----------------------------------------------------------------------------------
@dataclass
class _Found:
    """One kind of fault: how many, and the first few values to name."""

    count: int = 0
    first: list[Any] = field(default_factory=list)

    def add(self, values: np.ndarray | list[Any], count: int | None = None) -> None:
        values = list(values)
        self.count += len(values) if count is None else count
        if len(self.first) < _SHOWN:
            self.first.extend(values[: _SHOWN - len(self.first)])

    def where(self, label: str) -> str:
        shown = ", ".join(str(v) for v in self.first)
        more = f" ({self.count} in all)" if self.count > _SHOWN else ""
        return f"{label} {shown}{more}"


@dataclass
class BlockLayout:
    """The valid, complete units of a block: ids, and the block's row of each (unit, period) (units x periods)."""

    units: np.ndarray
    index: np.ndarray | None  # None: the block is exactly units x periods in order (a reshape)


@dataclass
class BlockChecks:
    """What :func:`check_block` found in one block."""

    rows: int = 0
    units: int = 0
    missing: dict[str, _Found] = field(default_factory=dict)  # role -> data rows (1-based)
    infinite: dict[str, _Found] = field(default_factory=dict)
    duplicates: _Found = field(default_factory=_Found)  # data rows
    unsorted: _Found = field(default_factory=_Found)  # units whose periods are not in order
    cohort_varies: _Found = field(default_factory=_Found)  # units
    cluster_varies: _Found = field(default_factory=_Found)  # units
    unbalanced: _Found = field(default_factory=_Found)  # units missing periods
    unbalanced_rows: int = 0


def _never_inf(g: np.ndarray) -> np.ndarray:
    """Cohorts with never treated (0 or missing) as +inf, as the estimators code them."""
    g = np.asarray(g, dtype=np.float64)
    return np.where(np.isnan(g) | (g == 0), np.inf, g)


@dataclass
class RowLayout:
    """Every valid unit of a block, complete or not: ids, and for each of their rows the unit and the period."""

    units: np.ndarray  # ids of the valid units, in order
    rows: np.ndarray  # positions in the block of their rows
    unit: np.ndarray  # per row: index into ``units``
    period: np.ndarray  # per row: index into the periods


def _row_faults(block: UnitBlock, roles: Mapping[str, str]) -> tuple[BlockChecks, np.ndarray, np.ndarray, np.ndarray]:
    """Row-level rules of a block: the findings, the units' first rows, their row counts and the faulty units."""
    cols = block.columns
    u = cols[roles["unit"]]
    t = cols[roles["time"]]
    y = cols[roles["outcome"]]
    cl = cols[roles["cluster"]] if roles.get("cluster") else None
    n = len(u)
    found = BlockChecks(rows=n)
    bad_row = np.zeros(n, dtype=bool)
    for role, values in (("outcome", y), ("time", t)):
        if not np.issubdtype(values.dtype, np.floating):
            continue  # integers (without nulls: those come as floats) are complete and finite
        na = np.isnan(values)
        inf = np.isinf(values)
        if na.any():
            found.missing.setdefault(role, _Found()).add(block.positions(na) + 1)
        if inf.any():
            found.infinite.setdefault(role, _Found()).add(block.positions(inf) + 1)
        bad_row |= na | inf
    if cl is not None:
        na = _is_missing(cl)
        if na.any():
            found.missing.setdefault("cluster", _Found()).add(block.positions(na) + 1)
            bad_row |= na
    new_unit = u[1:] != u[:-1]
    starts = np.flatnonzero(np.concatenate([[True], new_unit]))
    counts = np.diff(np.append(starts, n))
    found.units = len(starts)

    def unit_of(rows: np.ndarray) -> np.ndarray:  # the unit (index into starts) of each of these rows
        return np.searchsorted(starts, rows, side="right") - 1

    dup = ~new_unit & (t[1:] == t[:-1])
    if dup.any():
        first = np.flatnonzero(dup)
        dup_rows = np.zeros(n, dtype=bool)
        dup_rows[first] = dup_rows[first + 1] = True
        found.duplicates.add(block.positions(dup_rows) + 1)
        bad_row |= dup_rows
    back = ~new_unit & (t[1:] < t[:-1])
    if back.any():
        ids = np.unique(unit_of(np.flatnonzero(back) + 1))
        found.unsorted.add(u[starts[ids]])
        bad_row[np.isin(unit_of(np.arange(n)), ids)] = True
    bad_unit = np.zeros(len(starts), dtype=bool)
    if bad_row.any():
        bad_unit[unit_of(np.flatnonzero(bad_row))] = True
    return found, starts, counts, bad_unit


def check_block(block: UnitBlock, roles: Mapping[str, str], periods: np.ndarray) -> tuple[BlockChecks, BlockLayout]:
    """The panel rules on one block of whole units, and the layout of its valid units observed in every period.

    ``roles`` names the block's ``unit``, ``time``, ``outcome``, ``cohort`` and optionally
    ``cluster`` columns. A unit with a fault (a missing or infinite value, a repeated or
    out-of-order period, a cohort or cluster that changes) is reported and left out of the
    layout; a unit missing periods is counted as unbalanced and left out too (and, as in
    memory, its cohort and cluster are not checked: it is dropped).
    """
    cols = block.columns
    u = cols[roles["unit"]]
    t = cols[roles["time"]]
    cl = cols[roles["cluster"]] if roles.get("cluster") else None
    n = len(u)
    T = len(periods)
    found, starts, counts, bad_unit = _row_faults(block, roles)
    full = (counts == T) & ~bad_unit
    regular = n == len(starts) * T and bool((counts == T).all())
    want = periods.astype(t.dtype) if np.issubdtype(t.dtype, np.integer) else periods
    if regular:
        tt = t.reshape(-1, T)
    else:
        tt = t[np.where(full[:, None], starts[:, None] + np.arange(T), 0)]
    full &= (tt == want).all(axis=1)
    unbalanced = ~full & ~bad_unit
    if unbalanced.any():
        found.unbalanced.add(u[starts[unbalanced]])
        found.unbalanced_rows += int(counts[unbalanced].sum())
    index = None if regular and full.all() else (starts[:, None] + np.arange(T))[full]
    g = cols[roles["cohort"]]
    gm = g.reshape(-1, T) if index is None else g[index]
    varies = (gm != gm[:, :1]).any(axis=1)
    if varies.any():  # NaN differs from NaN, and 0 and NaN both mean never treated: look again at these
        again = _never_inf(gm[varies])
        varies[varies] = (again != again[:, :1]).any(axis=1)
    ok_units = np.flatnonzero(full)
    if varies.any():
        found.cohort_varies.add(u[starts[ok_units[varies]]])
    if cl is not None:
        cm = cl.reshape(-1, T) if index is None else cl[index]
        cvaries = (cm != cm[:, :1]).any(axis=1)
        if cvaries.any():
            found.cluster_varies.add(u[starts[ok_units[cvaries]]])
        varies |= cvaries
    if varies.any():
        index = (np.arange(n).reshape(-1, T) if index is None else index)[~varies]
        ok_units = ok_units[~varies]
    return found, BlockLayout(units=u[starts[ok_units]], index=index)


def check_block_rows(block: UnitBlock, roles: Mapping[str, str], periods: np.ndarray) -> tuple[BlockChecks, RowLayout]:
    """As :func:`check_block`, for an unbalanced panel used whole: every unit's cohort and cluster are checked, and
    the layout holds every valid unit's rows (units missing periods are counted in ``unbalanced``, not dropped)."""
    cols = block.columns
    u = cols[roles["unit"]]
    t = cols[roles["time"]]
    cl = cols[roles["cluster"]] if roles.get("cluster") else None
    T = len(periods)
    found, starts, counts, bad_unit = _row_faults(block, roles)
    unit_row = np.repeat(np.arange(len(starts)), counts)
    first_row = starts[unit_row]
    g = _never_inf(cols[roles["cohort"]])
    varies = np.logical_or.reduceat(g != g[first_row], starts) & ~bad_unit
    if varies.any():
        found.cohort_varies.add(u[starts[varies]])
    bad = bad_unit | varies
    if cl is not None:
        cvaries = np.logical_or.reduceat(np.asarray(cl != cl[first_row], dtype=bool), starts) & ~bad
        if cvaries.any():
            found.cluster_varies.add(u[starts[cvaries]])
        bad |= cvaries
    incomplete = (counts < T) & ~bad
    if incomplete.any():
        found.unbalanced.add(u[starts[incomplete]])
        found.unbalanced_rows += int(counts[incomplete].sum())
    ok = np.flatnonzero(~bad)
    rows = np.flatnonzero(~bad[unit_row])
    new_index = np.full(len(starts), -1, dtype=np.int64)
    new_index[ok] = np.arange(len(ok))
    period = np.searchsorted(periods, np.asarray(t[rows], dtype=np.float64))
    return found, RowLayout(units=u[starts[ok]], rows=rows, unit=new_index[unit_row[rows]], period=period)


def _is_missing(values: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.floating):
        return np.isnan(values)
    if values.dtype == object:
        return np.array([v is None or (isinstance(v, float) and v != v) for v in values], dtype=bool)
    return np.zeros(len(values), dtype=bool)


@dataclass
class PanelChecks:
    """The panel rules' findings over a whole pass, collected block by block (in order)."""

    roles: Mapping[str, str]
    rows: int = 0
    units: int = 0
    missing: dict[str, _Found] = field(default_factory=dict)
    infinite: dict[str, _Found] = field(default_factory=dict)
    duplicates: _Found = field(default_factory=_Found)
    unsorted: _Found = field(default_factory=_Found)
    cohort_varies: _Found = field(default_factory=_Found)
    cluster_varies: _Found = field(default_factory=_Found)
    unbalanced: _Found = field(default_factory=_Found)
    unbalanced_rows: int = 0

    def add(self, found: BlockChecks) -> None:
        """Fold one block's findings in (blocks must come in order, so the first rows named are the file's first)."""
        self.rows += found.rows
        self.units += found.units
        for mine, theirs in ((self.missing, found.missing), (self.infinite, found.infinite)):
            for role, f in theirs.items():
                mine.setdefault(role, _Found()).add(f.first, f.count)
        for name in ("duplicates", "unsorted", "cohort_varies", "cluster_varies", "unbalanced"):
            f = getattr(found, name)
            if f.count:
                getattr(self, name).add(f.first, f.count)
        self.unbalanced_rows += found.unbalanced_rows

    def add_missing_units(self, rows: list[int]) -> None:
        """Rows without a unit id (0-based positions), left out of the blocks by :func:`unit_blocks`."""
        if rows:
            self.rows += len(rows)
            self.missing.setdefault("unit", _Found()).add([r + 1 for r in rows], len(rows))

    def problems(self) -> list[Problem]:
        """Every fault found, worded as the in-memory checks word them (unbalanced units are not a fault here)."""
        col = self.roles
        out: list[Problem] = []
        for role in ("outcome", "unit", "time", "cluster"):
            f = self.missing.get(role)
            if f is not None:
                out.append(missing_problem(col[role], f.count, what=f"out of {self.rows}", where=f.where("data rows")))
        for role in ("outcome", "time"):
            f = self.infinite.get(role)
            if f is not None:
                out.append(infinite_problem(col[role], f.count, where=f.where("data rows")))
        if self.duplicates.count:
            unit, time = col["unit"], col["time"]
            out.append(
                Problem(
                    f"duplicate unit-period rows: {self.duplicates.count} rows share a ({unit}, {time}) value with "
                    "another row",
                    column=f"{unit}, {time}",
                    where=self.duplicates.where("data rows"),
                    hint="keep one row per unit and period (aggregate or remove copies); if each period's rows are "
                    "different individuals (repeated cross-sections), pass panel=False",
                )
            )
        if self.unsorted.count:
            out.append(
                Problem(
                    f"the rows of {self.unsorted.count} unit(s) are not sorted by period",
                    column=col["time"],
                    where=self.unsorted.where("units"),
                    hint="out of core the rows must come sorted by unit, then period: sort the file once, or read "
                    "it into a DataFrame",
                )
            )
        if self.cohort_varies.count:
            out.append(
                Problem(
                    f"column {col['cohort']!r} (first treated period) varies within "
                    f"{self.cohort_varies.where('units')}; it must be constant for each unit"
                )
            )
        if self.cluster_varies.count:
            out.append(
                Problem(
                    f"cluster column {col['cluster']!r} varies within {self.cluster_varies.where('units')}; "
                    "clusters must contain whole units"
                )
            )
        return out

    def raise_problems(self, label: str | None = None) -> None:
        """Raise one :class:`~evaluator.errors.DataError` listing every fault, if any."""
        problems = self.problems()
        if problems:
            raise DataError(problems, source=label)
