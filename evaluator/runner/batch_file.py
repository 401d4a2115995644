"""A batch file: read it, check it against ``data_schemas/batch.schema.json`` and the notebooks, expand its grids.

The shape of the file (which keys, which types) is the JSON schema, checked by
jsonschema with ``iter_errors`` so that every problem is found at once. What a
schema cannot say is checked here: a run without a notebook needs
``defaults.notebook``, notebooks must exist, timeouts must be finite, names must be
safe folder names and unique, a grid's name placeholders must be keys of ``vary``,
a grid may not explode, and each run's parameters must suit its notebook. All the
problems end in one :class:`BatchError`, each naming the run and the field.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import reprlib
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import EvaluatorError, problems_message
from evaluator.files import shipped

if TYPE_CHECKING:
    from evaluator.runner.executors import ExecutorSpec

__all__ = ["MAX_RUNS", "NAME_RE", "Batch", "BatchError", "RunSpec", "batch_schema", "load_batch"]

TOP_KEYS = ("defaults", "runs", "grid", "executor")
#: What the ``executor:`` key may say, in the words of its message.
EXECUTOR_EXPECTED = (
    "expected 'local' (the default: processes on this machine) or a mapping {name: dask, scheduler: ADDRESS} "
    "with ADDRESS 'local:N' (a Dask LocalCluster of N worker processes) or a scheduler address such as "
    "'tcp://host:8786', and optionally in_worker: true"
)
DEFAULT_KEYS = ("notebook", "data", "timeout", "parameters")
RUN_KEYS = ("name", "notebook", "data", "timeout", "parameters")
GRID_KEYS = (*RUN_KEYS, "vary")
#: A run's name is its folder: no separators, no leading dot (temporary folders start with one).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESERVED = {"index.html", "index.json"}
BUNDLED = "bundled:"
#: The most runs one batch file may expand to: a grid is a product, and a few keys can ask for millions.
MAX_RUNS = 10_000


class BatchError(EvaluatorError, ValueError):
    """A batch file is not usable; nothing was run.

    ``problems`` holds every problem found (each naming the run and the field), so
    that all of them can be fixed at once; the message lists them all.
    """

    def __init__(self, problems: Sequence[str] | str, *, source: str | Path | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = str(source) if source is not None else None
        super().__init__(problems_message(self.problems, self.source))


@dataclass(frozen=True)
class RunSpec:
    """One run of a batch, checked.

    Attributes
    ----------
    name : str
        The run's name and the name of its folder under the batch's ``out``.
    notebook : pathlib.Path
        Absolute path of the notebook.
    parameters : dict
        The run's parameters as given (``data`` folded into ``data_path``, relative
        input paths made absolute), already checked against the notebook.
    timeout : float or None
        Seconds the whole run may take (None: no limit).
    origin : str
        Where the run comes from in the batch file, e.g. ``"runs[0]"`` or ``"grid[1] outcome='x'"``.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    timeout: float | None = None
    origin: str = ""


@dataclass(frozen=True)
class Batch:
    """A checked batch file: its path, its runs in file order (explicit runs, then grids), and its
    ``executor:`` (None when the file names none: the local pool, unless the command line says otherwise)."""

    path: Path
    runs: tuple[RunSpec, ...]
    executor: ExecutorSpec | None = None

    def __len__(self) -> int:
        return len(self.runs)

    def select(self, names: Iterable[str]) -> Batch:
        """The same batch restricted to the runs named (in file order); unknown names raise BatchError."""
        wanted = list(names)
        known = {r.name for r in self.runs}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise BatchError(
                [f"no run named {n!r}; the runs are {', '.join(sorted(known))}" for n in missing], source=self.path
            )
        return Batch(self.path, tuple(r for r in self.runs if r.name in set(wanted)), self.executor)


# -- the schema -----------------------------------------------------------------------
@lru_cache(maxsize=1)
def batch_schema() -> dict[str, Any]:
    """The batch file's JSON schema, ``data_schemas/batch.schema.json``.

    >>> import jsonschema
    >>> jsonschema.Draft202012Validator.check_schema(batch_schema())
    >>> sorted(batch_schema()["properties"])
    ['defaults', 'executor', 'grid', 'runs']
    """
    return json.loads((shipped("data_schemas") / "batch.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema  # about 1 s of imports: only when a batch file is read, never for `evaluator --help`

    return jsonschema.Draft202012Validator(batch_schema())


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 60, 60, 5, 5


def _short(value: Any) -> str:
    """A bounded repr of a value from the batch file: YAML aliases can nest a small file into a huge object."""
    return _REPR.repr(value)


def _label(section: str, index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"{section}[{index}] {name!r}" if isinstance(name, str) and name else f"{section}[{index}]"


#: What a field of a run (or of the defaults) must be, in the words of the messages.
_EXPECTED = {
    "notebook": "expected a notebook path",
    "timeout": "expected a positive number of seconds",
    "parameters": "expected a mapping of names to values",
    "vary": "expected a mapping of parameter names to lists of values",
}
#: Within one run, problems are listed field by field in this order (the order a reader fixes them in).
_RANK = {"": 0, "name": 1, "notebook": 2, "data": 3, "timeout": 4, "parameters": 5, "vary": 6, "template": 7, "run": 8}

#: A place in the batch file: () the top level, ("defaults",), ("runs",) the list, ("runs", 0) one run.
Location = tuple[Any, ...]
#: Problems at one place: (field, message); field "" for the place itself (its type, unknown keys).
Found = dict[Location, list[tuple[str, str]]]


def _schema_problems(doc: Any, source: Path) -> Found:
    """Every schema violation of ``doc``, worded as before the schema existed, by where it is.

    A top level that is not a mapping is the one problem that stops the reading at once.
    """
    found: Found = {}
    seen: set[tuple[Location, str]] = set()

    def add(loc: Location, field: str, message: str) -> None:
        if (loc, field) not in seen:  # one message per field, however many schema keywords it broke
            seen.add((loc, field))
            found.setdefault(loc, []).append((field, message))

    errors = sorted(_validator().iter_errors(doc), key=lambda e: _position(doc, e.absolute_path))
    for error in errors:
        path = list(error.absolute_path)
        if path and path[0] == "executor":  # one message for the key, whatever in it is wrong
            add(("executor",), "", f"executor: {EXECUTOR_EXPECTED}; got {_short(doc['executor'])}")
            continue
        if error.validator == "additionalProperties":  # one message per unknown key, in file order
            allowed = tuple(error.schema.get("properties", ()))
            for key in (k for k in error.instance if k not in allowed):
                if not path:
                    add((), f"?{key!r}", f"unknown top-level key {key!r}; allowed: {', '.join(TOP_KEYS)}")
                else:
                    where = "defaults" if path == ["defaults"] else _label(path[0], path[1], error.instance)
                    add(tuple(path), f"?{key!r}", f"{where}: unknown field {key!r}; allowed: {', '.join(allowed)}")
            continue
        if not path:
            raise BatchError(
                f"the top level must be a mapping with keys {', '.join(TOP_KEYS)}; got a {type(doc).__name__}",
                source=source,
            )
        if path[0] == "defaults":
            loc, where, entry, rest = ("defaults",), "defaults", doc["defaults"], path[1:]
        elif len(path) == 1:
            add((path[0],), "", f"{path[0]}: expected a list of runs, got {type(doc[path[0]]).__name__}")
            continue
        else:
            loc, entry, rest = (path[0], path[1]), doc[path[0]][path[1]], path[2:]
            where = _label(path[0], path[1], entry)
        if not rest and error.validator == "required":  # name or vary absent: said as that field's problem
            fields = [k for k in error.validator_value if k not in entry]
        elif not rest:  # the entry itself is no mapping
            kind = "a mapping" if loc == ("defaults",) else f"a mapping with fields {', '.join(RUN_KEYS)}"
            add(loc, "", f"{where}: expected {kind}, got {_short(entry)}")
            continue
        else:
            fields = [rest[0]]
        for field in fields:
            add(loc, *_field_problem(where, entry, field, rest[1:]))
    return found


def _position(doc: Any, path: Iterable[Any]) -> tuple[int, ...]:
    """Where ``path`` is in the file (indices of keys in their mapping), so that problems come in file order."""
    out, node = [], doc
    for part in path:
        out.append(list(node).index(part) if isinstance(node, Mapping) else int(part))
        node = node[part]
    return tuple(out)


def _field_problem(where: str, entry: Mapping[str, Any], field: str, below: Sequence[Any]) -> tuple[str, str]:
    """(field, message) for a field of a run or of the defaults that the schema refused."""
    if field == "name":
        return "name", f"{where}: field 'name': missing; every run needs a name (its folder)"
    if field == "vary" and below:
        key, value = below[0], entry["vary"][below[0]]
        return f"vary.{key}", f"{where}: field 'vary.{key}': expected a non-empty list of values, got {_short(value)}"
    return field, f"{where}: field '{field}': {_EXPECTED[field]}, got {_short(entry.get(field))}"


# -- code-only checks -------------------------------------------------------------------
def _find_notebook(value: str, base: Path) -> Path | None:
    """The notebook a (schema-valid) path names: relative to the batch file, or a shipped one by bare name."""
    from evaluator.runner.parameters import notebook_path

    path = Path(value).expanduser()
    candidate = path if path.is_absolute() else base / path
    if candidate.is_file():
        return candidate.resolve()
    if len(path.parts) == 1:  # a bare name may be a shipped notebook
        try:
            return notebook_path(value).resolve()
        except EvaluatorError:
            pass
    return None


def _not_found(value: str, base: Path, where: str) -> str:
    path = Path(value).expanduser()
    candidate = path if path.is_absolute() else base / path
    return f"{where}: field 'notebook': file not found: {candidate} (paths are relative to the batch file)"


def _seconds(value: float | None, where: str, here: _Listing) -> float | None:
    """A timeout the schema let through, as float seconds; infinity and NaN pass a JSON schema (JSON has
    neither), so they are refused here."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except OverflowError:  # a whole number too large for a float is no finite timeout either
        seconds = math.inf
    if not math.isfinite(seconds):
        here.add("timeout", f"{where}: field 'timeout': {_EXPECTED['timeout']}, got {_short(value)}")
        return None
    return seconds


def _absolute_inputs(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative input paths (``data_path``, ``*_path``) made absolute against the batch file's folder."""
    out = dict(params)
    for key, value in params.items():
        if (key == "data_path" or key.endswith("_path")) and isinstance(value, str) and value:
            if not value.startswith(BUNDLED) and not Path(value).expanduser().is_absolute():
                out[key] = str((base / Path(value).expanduser()).resolve())
    return out


def _placeholders(template: str) -> list[str]:
    """Field names used by a ``str.format`` template; ValueError if it is malformed."""
    names = []
    for _, fname, spec, _ in string.Formatter().parse(template):
        if fname is not None:
            if fname == "" or not fname.isidentifier():
                raise ValueError(f"placeholder {{{fname}}} is not a name; use {{parameter}}")
            names.append(fname)
            if spec and "{" in spec:
                raise ValueError("nested placeholders are not supported")
    return names


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchError(f"batch file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"batch file {path} cannot be read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise BatchError(
            f"YAML syntax error at {where}{problem}" + (f" ({context})" if context else ""), source=path
        ) from None


def _check_run_parameters(notebook: Path, params: Mapping[str, Any], label: str) -> str | None:
    from evaluator.runner.parameters import check_parameters

    try:
        check_parameters(notebook, params)
    except EvaluatorError as exc:
        return f"{label}: field 'parameters': {exc}"
    return None


class _Listing:
    """The problems of one place in the file, sorted field by field when they are handed over."""

    def __init__(self, found: Sequence[tuple[str, str]] = ()) -> None:
        self.items = [(self.rank(field), message) for field, message in found]
        self.fields = {field.split(".")[0] for field, _ in found}

    @staticmethod
    def rank(field: str) -> int:
        return _RANK.get(field.split(".")[0], 0)

    def bad(self, field: str) -> bool:
        """Did the schema refuse ``field`` here?"""
        return field in self.fields

    def add(self, field: str, message: str | None) -> None:
        if message:
            self.items.append((self.rank(field), message))

    def messages(self) -> list[str]:
        return [message for _, message in sorted(self.items, key=lambda item: item[0])]


def load_batch(path: str | Path) -> Batch:
    """Read and check a batch file (format in :mod:`evaluator.runner.batch` and ``data_schemas/batch.schema.json``).

    Every problem is collected before raising: unknown keys, missing or absent
    notebooks, duplicate or unsafe names, non-mapping parameters, empty grid
    lists, bad name placeholders, bad timeouts and, for each run, its parameters
    checked against its notebook with :func:`evaluator.runner.check_parameters`
    (unknown names, values of the wrong type, missing input files).

    Parameters
    ----------
    path : str or Path
        The YAML batch file.

    Returns
    -------
    Batch

    Raises
    ------
    BatchError
        Listing every problem, each naming the run (``runs[0] 'name'``) and the field.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "batch.yaml"
    >>> _ = file.write_text("runs:\\n  - name: a/b\\n    notebook: nowhere.ipynb\\n    timeout: -1\\n")
    >>> load_batch(file)
    Traceback (most recent call last):
    ...
    evaluator.runner.batch_file.BatchError: 3 problems found in ...
    """
    path = Path(path).expanduser().resolve()
    doc = _read_yaml(path)
    base = path.parent
    if doc is None:
        raise BatchError("the batch file is empty; it needs 'runs' or 'grid'", source=path)
    if isinstance(doc, Mapping) and "defaults" in doc and not doc["defaults"]:
        doc = {k: v for k, v in doc.items() if k != "defaults"}  # an empty value (null, [], 0) means no defaults
    found = _schema_problems(doc, path)
    problems: list[str] = [message for _, message in found.get((), [])]
    problems += [message for _, message in found.get(("executor",), [])]
    executor = None
    if isinstance(doc, Mapping) and doc.get("executor") is not None and ("executor",) not in found:
        executor, problem = _executor(doc["executor"])
        if problem:
            problems.append(problem)

    # defaults
    here = _Listing(found.get(("defaults",), []))
    defaults: Mapping[str, Any] = {} if here.bad("") else doc.get("defaults") or {}
    d_notebook = None
    if "notebook" in defaults and not here.bad("notebook"):
        d_notebook = _find_notebook(defaults["notebook"], base)
        if d_notebook is None:
            here.add("notebook", _not_found(defaults["notebook"], base, "defaults"))
    d_timeout = None if here.bad("timeout") else _seconds(defaults.get("timeout"), "defaults", here)
    d_params = {} if here.bad("parameters") else dict(defaults.get("parameters") or {})
    if defaults.get("data") is not None:
        d_params["data_path"] = str(defaults["data"])
    given = _Defaults(d_notebook, "notebook" in defaults, d_timeout, _absolute_inputs(d_params, base))
    problems += here.messages()

    # entries: (section, index, label, entry); an entry that is not a mapping was reported by the schema
    entries: list[tuple[str, int, str, Mapping[str, Any]]] = []
    for section in ("runs", "grid"):
        problems += [message for _, message in found.get((section,), [])]
        items = doc.get(section)
        if not isinstance(items, list):
            continue
        for i, entry in enumerate(items):
            if isinstance(entry, Mapping):
                entries.append((section, i, _label(section, i, entry), entry))
            else:
                problems += [message for _, message in found.get((section, i), [])]
    if not entries and not problems:
        problems.append("no runs: add a 'runs' or 'grid' list")

    runs: list[RunSpec] = []
    for section, index, where, entry in entries:
        here = _Listing(found.get((section, index), []))
        runs += _expand(section, index, where, entry, here, base, given)
        problems += here.messages()

    seen: dict[str, str] = {}
    for run in runs:
        if not run.name:
            continue
        if run.name in seen:
            problems.append(
                f"{run.origin}: field 'name': duplicate run name {run.name!r} (also {seen[run.name]}); "
                "names must be unique (in a grid, put every varied key in the name)"
            )
        else:
            seen[run.name] = run.origin
    if problems:
        raise BatchError(problems, source=path)
    return Batch(path, tuple(runs), executor)


def _executor(value: Any) -> tuple[ExecutorSpec | None, str | None]:
    """The ``executor:`` of a batch file (its shape already checked by the schema), or the problem with it."""
    from evaluator.runner.executors import EXECUTORS, ExecutorSpec, scheduler_problem

    entry = {"name": value} if isinstance(value, str) else dict(value)
    name, scheduler, in_worker = entry.get("name"), entry.get("scheduler"), bool(entry.get("in_worker"))
    if name not in EXECUTORS:
        return None, f"executor: unknown executor {name!r}; the executors are {', '.join(sorted(EXECUTORS))}"
    if name == "local":
        if scheduler is not None or in_worker:
            field = "scheduler" if scheduler is not None else "in_worker"
            return None, f"executor: 'local' takes no {field}; for Dask say name: dask"
        return ExecutorSpec("local"), None
    if scheduler is None:
        return None, f"executor: {name!r} needs a scheduler: 'local:N' or an address such as 'tcp://host:8786'"
    problem = scheduler_problem(scheduler)
    if problem:
        return None, f"executor: field 'scheduler': {problem}"
    return ExecutorSpec(name, scheduler.strip(), in_worker), None


@dataclass(frozen=True)
class _Defaults:
    """The batch's defaults, checked: a run's own fields win over them."""

    notebook: Path | None
    names_notebook: bool  # the defaults have a notebook field (if a broken one, its problem is said there)
    timeout: float | None
    parameters: dict[str, Any]


def _expand(
    section: str, index: int, where: str, entry: Mapping[str, Any], here: _Listing, base: Path, defaults: _Defaults
) -> list[RunSpec]:
    """The runs of one entry (one, or a grid's product), adding to ``here`` what is wrong with them."""
    name = None if here.bad("name") else entry.get("name")
    notebook = defaults.notebook
    if "notebook" in entry:
        notebook = None
        if not here.bad("notebook"):
            notebook = _find_notebook(entry["notebook"], base)
            if notebook is None:
                here.add("notebook", _not_found(entry["notebook"], base, where))
    elif notebook is None and not defaults.names_notebook:
        here.add("notebook", f"{where}: field 'notebook': missing (and no defaults.notebook)")
    timeout = defaults.timeout
    if "timeout" in entry:
        timeout = None if here.bad("timeout") else _seconds(entry["timeout"], where, here)
    params = {} if here.bad("parameters") else dict(entry.get("parameters") or {})
    if entry.get("data") is not None:
        params["data_path"] = str(entry["data"])
    params = {**defaults.parameters, **_absolute_inputs(params, base)}

    combos: list[dict[str, Any]] = [{}]
    if section == "grid":
        if here.bad("vary"):
            return []
        vary = entry["vary"]
        size = math.prod(len(v) for v in vary.values())
        if size > MAX_RUNS:
            here.add(
                "vary",
                f"{where}: field 'vary': the grid expands to {size:,} runs, more than the {MAX_RUNS:,} a batch "
                "may hold; split it into several batch files or vary fewer parameters",
            )
            return []
        combos = [dict(zip(vary, combo, strict=True)) for combo in itertools.product(*vary.values())]
        if name is not None:
            try:
                used = _placeholders(name)
            except ValueError as exc:
                here.add("template", f"{where}: field 'name': bad format template {name!r}: {exc}")
                return []
            unknown = [u for u in used if u not in vary]
            if unknown:
                here.add(
                    "template",
                    f"{where}: field 'name': placeholder {{{unknown[0]}}} in {name!r} is not a key of "
                    f"'vary' ({', '.join(map(str, vary))})",
                )
                return []

    runs = []
    for combo in combos:
        run_name = name.format(**combo) if (name is not None and section == "grid") else name
        origin = where if not combo else f"{where} " + " ".join(f"{k}={v!r}" for k, v in combo.items())
        label = f"{section}[{index}] {run_name!r}" if run_name else where
        if run_name is not None and (not NAME_RE.match(run_name) or run_name.lower() in RESERVED):
            here.add(
                "run",
                f"{label}: field 'name': {run_name!r} is not safe as a folder name; use letters, "
                f"digits, '.', '_' and '-' (not first), at most 100 characters",
            )
        run_params = _absolute_inputs({**params, **combo}, base)
        runs.append(RunSpec(run_name or "", notebook or Path(), run_params, timeout, origin))
        if notebook is not None and run_name is not None:
            here.add("run", _check_run_parameters(notebook, run_params, label))
    return runs
