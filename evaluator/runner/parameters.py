"""A report notebook's parameters cell: read it, and check and coerce given values before anything runs."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.data.datasets import resolve_data
from evaluator.errors import ParameterError
from evaluator.files import shipped

__all__ = ["Parameter", "check_parameters", "notebook_parameters", "notebook_path"]


def _is_input(name: str) -> bool:
    """A parameter that names an input file (hashed into the manifest and the fingerprint)."""
    return name == "data_path" or name.endswith("_path")


def notebook_path(name: str) -> Path:
    """Path of a report notebook shipped with evaluator (``"did_evaluation"``, ``"matched_evaluation"``).

    The notebooks live in the repository's ``notebooks/``; an installed wheel carries a copy.
    """
    file = name if Path(name).suffix else f"{name}.ipynb"
    if (shipped("notebooks") / file).is_file():
        return shipped("notebooks") / file
    raise ParameterError(f"no report notebook {name!r}; the shipped ones are did_evaluation and matched_evaluation")


# -- parameters -------------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell.

    Attributes
    ----------
    name : str
        The variable the cell assigns.
    default : Any
        Its value in the cell (a Python literal).
    comment : str
        The ``# comment`` after it: the parameter's help (``papermill --help-notebook`` shows the same).
    line : int
        Line of the assignment within the cell (1-based).
    annotation : str or None
        The type papermill read from an annotation (``n: int = 3``) or a ``# type: int`` comment, if any;
        values are coerced to the default's type (:attr:`kind`), as always.
    """

    name: str
    default: Any
    comment: str
    line: int
    annotation: str | None = None

    @property
    def kind(self) -> str:
        """The type values are coerced to: bool, int, float, str, list, dict or any (default None)."""
        d = self.default
        for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "dict")):
            if isinstance(d, t):
                return name
        return "any"


def _read_notebook(notebook: str | Path) -> Any:
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise ParameterError(f"notebook not found: {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise ParameterError(f"{path} is not a readable notebook: {exc}") from exc


def _literals(notebook: str | Path, source: str) -> dict[str, tuple[int, int, Any]]:
    """The check papermill does not make: the cell holds only ``name = literal`` lines.

    papermill's inspection reads what it can and skips the rest, and it gives a default as
    source text; a run may change exactly what the cell shows, so anything else is refused
    here, and each value is the literal evaluated here. Returns name -> (line, last line, value).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{notebook}: the parameters cell does not parse: {exc}") from exc
    out: dict[str, tuple[int, int, Any]] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if not isinstance(target, ast.Name) or node.value is None:
            raise ParameterError(f"{notebook}: parameters cell line {node.lineno}: only `name = literal` is allowed")
        try:
            value = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ParameterError(
                f"{notebook}: parameter {target.id!r} (line {node.lineno}) is not a literal; "
                "parameters must be literals"
            ) from exc
        out[target.id] = (node.lineno, node.end_lineno or node.lineno, value)
    return out


class _Unparsed(logging.Filter):
    """Drops papermill's "Unable to parse line" warning: such a line is read by :func:`_literals` instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to parse line")


def _inspect(cell: Any) -> dict[str, Any]:
    """papermill's own reading of a Python parameters cell: name -> (name, inferred_type_name, default, help)."""
    from papermill.translators import PythonTranslator  # papermill loads nbclient and more: only when needed

    logger = logging.getLogger("papermill.translators")
    if not any(isinstance(f, _Unparsed) for f in logger.filters):
        logger.addFilter(_Unparsed())
    # PythonTranslator rather than papermill.inspect_notebook: the latter insists on a kernelspec in the
    # notebook's metadata, which a notebook checked before it runs need not have yet.
    return {p.name: p for p in PythonTranslator.inspect(cell)}


def notebook_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    The cell must hold only assignments of Python literals, one a line, each with a
    ``# comment``; anything else is refused so that what a run may change is exactly
    what the cell shows. The help comments and annotated types are papermill's
    reading of the cell (its notebook inspection, what ``papermill --help-notebook``
    shows); names and values come from the check that the cell holds only literals.

    Examples
    --------
    >>> p = notebook_parameters(notebook_path("matched_evaluation"))["ratio"]
    >>> p.default, p.kind, p.comment
    (1, 'int', 'comparison people per programme participant')
    """
    nb = _read_notebook(notebook)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ParameterError(f"{notebook}: no cell tagged 'parameters' (papermill's convention); tag one")
    cell = cells[0]
    literals = _literals(notebook, cell.source)
    read = _inspect(cell)
    lines = cell.source.splitlines()
    out: dict[str, Parameter] = {}
    for name, (line, last, value) in literals.items():
        if name in read:
            comment, annotation = read[name].help, read[name].inferred_type_name
        else:  # a line papermill skips (two '=' on it): its comment, read the way papermill reads one
            text = lines[last - 1] if last <= len(lines) else ""
            comment, annotation = (text.split("#", 1)[1].strip() if "#" in text else ""), "None"
        out[name] = Parameter(name, value, comment, line, None if annotation == "None" else annotation)
    return out


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _coerce(p: Parameter, value: Any) -> Any:
    """``value`` as ``p``'s type, or ValueError with what was expected."""
    kind = p.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("expected true or false")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("expected a whole number, got a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("expected a whole number")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError("expected a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError("expected text")
    if kind in ("list", "dict"):
        want = list if kind == "list" else dict
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                if kind == "dict":
                    raise ValueError('expected a JSON object such as {"a": 1}') from None
                value = [v.strip() for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, want):
            raise ValueError(f"expected a {kind} (JSON, or comma-separated text for a list)")
        return value
    # default None: take what was given, parsing command-line text as JSON where it can
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def check_parameters(notebook: str | Path, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and coerce ``given`` against the notebook's parameters cell.

    Returns the coerced values (only those given). Raises :class:`ParameterError`
    listing every unknown name (with the known ones), every value that cannot be
    coerced to its default's type, and every input file that does not exist.

    Examples
    --------
    >>> nb = notebook_path("matched_evaluation")
    >>> check_parameters(nb, {"replace": "yes", "ratio": 2.0})
    {'replace': True, 'ratio': 2}
    >>> check_parameters(nb, {"ratoi": 2})
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: ...unknown parameter 'ratoi'...
    """
    known = notebook_parameters(notebook)
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in (given or {}).items():
        if name not in known:
            close = [k for k in known if k.lower() == name.lower() or sorted(k) == sorted(name)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}; known: {', '.join(known)}")
            continue
        p = known[name]
        try:
            out[name] = _coerce(p, value)
        except ValueError as exc:
            problems.append(f"parameter {name}={value!r}: {exc} (the default is {p.default!r}: {p.comment})")
    for name, value in out.items():
        if _is_input(name) and isinstance(value, str) and value:
            try:
                resolve_data(value, parameter=name)
            except ParameterError as exc:
                problems.append(str(exc))
    if problems:
        raise ParameterError(f"{Path(notebook).name}: " + "; ".join(problems))
    return out
