"""A report notebook's parameters cell: read it, and check and coerce given values before anything runs.

Besides its help, a parameter's ``# comment`` may *declare* what values it takes, so
that they are checked here, before a kernel starts, rather than in the notebook's
first cells. Declarations come first in the comment, each followed by
:data:`SEPARATOR` (a spaced em dash), and the help follows::

    estimator = "callaway_santanna"  # one of: "callaway_santanna", "twfe" — staggered adoption or two-way FE
    control_group = "never"  # one of: "never", "not_yet" (formerly "notyet") — comparison units
    inference = "bootstrap"  # one of: "cluster", "wild" if estimator is "twfe"; "bootstrap", "analytic" — method
    n_boot = 999  # range: [99, inf) if inference is "bootstrap" or "wild"; [0, inf) — bootstrap draws
    alpha = 0.05  # range: (0, 0.5) — 1 - confidence level
    caliper = None  # range: None if distance is "mahalanobis"; (0, inf) or None — largest distance
    title = "Sick leave: did it work?"  # required with data_path — report title shown at the top

The grammar (values are Python literals; names are parameters of the same cell)::

    comment     := (rule " — ")* help  |  (rule " — ")* rule
    rule        := "one of: " cases(values)  |  "range: " cases(bounds)  |  "required with " NAME ("," NAME)*
    cases(X)    := X [condition] (";" X [condition])*
    condition   := "if" NAME "is" LITERAL ("or" LITERAL)*
    values      := value ("," value)*
    value       := LITERAL ["(formerly" LITERAL ("," LITERAL)* ")"]
    bounds      := "None"  |  interval ["or None"]
    interval    := ("(" | "[") NUMBER "," NUMBER (")" | "]")   NUMBER may be inf or -inf

The first case whose condition holds (in the values the run will have) applies; a
last case without a condition applies otherwise; when none applies there is no
check. ``(formerly "old")`` accepts an old spelling with a deprecation warning and
runs with the new one. ``required with data_path`` means: when ``data_path`` is
given and names other data than the notebook's own, this parameter must be given
too (the default describes the notebook's own data), unless it can be read from
the data's sidecar schema (see :func:`check_parameters`). Declarations contain no
``=``: papermill skips a line with two, and its inspection (``papermill
--help-notebook``) shows the whole comment as the parameter's help.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.data.datasets import resolve_data
from evaluator.errors import ParameterError
from evaluator.files import shipped

__all__ = [
    "SEPARATOR",
    "Case",
    "Declaration",
    "Interval",
    "Parameter",
    "check_parameters",
    "notebook_parameters",
    "notebook_path",
    "parse_declaration",
]

#: Between a declaration and what follows it in a parameter's comment: an em dash between spaces.
SEPARATOR = " — "
_KEYWORDS = ("one of:", "range:", "required with ")


def _is_input(name: str) -> bool:
    """A parameter that names an input file (hashed into the manifest and the fingerprint)."""
    return name == "data_path" or name.endswith("_path")


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    """The choice closest to ``word`` (case, a typo, swapped letters), or None."""
    by_lower = {c.lower(): c for c in reversed(choices)}
    w = word.lower()
    if w in by_lower:
        return by_lower[w]
    swapped = [c for c in choices if sorted(c.lower()) == sorted(w)]
    if swapped:
        return swapped[0]
    close = difflib.get_close_matches(w, list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def notebook_path(name: str) -> Path:
    """Path of a report notebook (or other file) shipped with evaluator, by name.

    The notebooks live in the repository's ``notebooks/``; an installed wheel carries a copy.

    Parameters
    ----------
    name : str
        ``"did_evaluation"``, ``"matched_evaluation"`` (``.ipynb`` may be left off), or a
        file name such as ``"demo_batch.yaml"``.

    Raises
    ------
    ParameterError
        No such file; the message suggests the closest shipped notebook and lists them all.

    Examples
    --------
    >>> notebook_path("did_evaluation").name
    'did_evaluation.ipynb'
    >>> notebook_path("did_evalution")
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: no report notebook 'did_evalution' (did you mean did_evaluation?); ...
    """
    folder = shipped("notebooks")
    file = name if Path(name).suffix else f"{name}.ipynb"
    if (folder / file).is_file():
        return folder / file
    names = sorted(p.stem for p in folder.glob("*.ipynb"))
    close = _did_you_mean(Path(name).stem if Path(name).suffix == ".ipynb" else name, names)
    hint = f" (did you mean {close}?)" if close else ""
    raise ParameterError(f"no report notebook {name!r}{hint}; the shipped ones are {', '.join(names)}")


# -- declarations ------------------------------------------------------------------------------------------------------
def _number(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: True is not 1, but 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """A range of numbers, each end open or closed, as declared by ``range: [1, inf)``.

    Examples
    --------
    >>> r = Interval(0, 0.5, low_closed=False, high_closed=False)
    >>> 0.05 in r, 0.5 in r, str(r), r.words()
    (True, False, '(0, 0.5)', '> 0 and < 0.5')
    """

    low: float
    high: float
    low_closed: bool = True
    high_closed: bool = True

    def __contains__(self, value: object) -> bool:
        if not _is_number(value) or math.isnan(value):  # type: ignore[arg-type]
            return False
        x = float(value)  # type: ignore[arg-type]
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return above and below

    def __str__(self) -> str:
        low, high = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"{low}{_number(self.low)}, {_number(self.high)}{high}"

    def words(self) -> str:
        """The range as ``>= 1``, ``> 0 and < 0.5`` ..."""
        parts = []
        if not math.isinf(self.low):
            parts.append(f"{'>=' if self.low_closed else '>'} {_number(self.low)}")
        if not math.isinf(self.high):
            parts.append(f"{'<=' if self.high_closed else '<'} {_number(self.high)}")
        return " and ".join(parts) or "of any size"


@dataclass(frozen=True)
class Case:
    """One case of a ``one of:`` or ``range:`` declaration, with the condition under which it applies.

    Attributes
    ----------
    allowed : tuple
        ``one of``: the allowed values.
    interval : Interval or None
        ``range``: the allowed numbers (None: only ``None`` is allowed).
    none : bool
        ``range``: ``None`` is allowed too.
    on : str or None
        The parameter of the condition (None: the case applies unconditionally).
    when : tuple
        The values of ``on`` for which the case applies.
    """

    allowed: tuple[Any, ...] = ()
    interval: Interval | None = None
    none: bool = False
    on: str | None = None
    when: tuple[Any, ...] = ()

    def applies(self, values: Mapping[str, Any]) -> bool:
        """Does the condition hold in ``values`` (the run's parameters)?"""
        return self.on is None or (self.on in values and any(_same(values[self.on], w) for w in self.when))

    def admits(self, value: Any) -> bool:
        """Is ``value`` allowed by this case?"""
        if self.allowed:
            return any(_same(value, a) for a in self.allowed)
        if value is None:
            return self.none
        return self.interval is not None and value in self.interval

    def condition(self, values: Mapping[str, Any]) -> str:
        """``"with estimator='twfe' "`` for a conditional case, else ``""``."""
        return f"with {self.on}={values.get(self.on)!r} " if self.on else ""


@dataclass(frozen=True)
class Declaration:
    """What a parameter's comment declares about its values, and its help (see the module's grammar).

    Attributes
    ----------
    one_of : tuple of Case
        From ``one of:``; empty when not declared.
    range : tuple of Case
        From ``range:``; empty when not declared.
    required_with : tuple of str
        From ``required with``: parameters that, given with other data than the
        notebook's own, make this one required.
    formerly : tuple of (old, new) pairs
        Old spellings still accepted (with a deprecation warning) and what they mean now.
    help : str
        The rest of the comment: the human description.

    Examples
    --------
    >>> d = parse_declaration('one of: "never", "not_yet" (formerly "notyet") — comparison units')
    >>> d.problem("nevr", {}), d.renamed("notyet"), d.help
    ("choose one of 'never', 'not_yet' (did you mean 'never'?)", 'not_yet', 'comparison units')
    """

    one_of: tuple[Case, ...] = ()
    range: tuple[Case, ...] = ()
    required_with: tuple[str, ...] = ()
    formerly: tuple[tuple[Any, Any], ...] = ()
    help: str = ""

    def renamed(self, value: Any) -> Any:
        """The current spelling of ``value`` when it is a former one, else ``value`` itself."""
        for old, new in self.formerly:
            if _same(value, old):
                return new
        return value

    def references(self) -> set[str]:
        """The other parameters the declaration names (conditions, ``required with``)."""
        return {c.on for c in self.one_of + self.range if c.on} | set(self.required_with)

    def allowed(self, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The values ``one of`` allows given the run's other ``values`` (None: no ``one of`` applies)."""
        case = next((c for c in self.one_of if c.applies(values)), None)
        return case.allowed if case else None

    def problem(self, value: Any, values: Mapping[str, Any], *, kind: str = "any") -> str | None:
        """Why ``value`` is not allowed when the run's parameters are ``values``, or None if it is.

        ``kind`` is the parameter's type (:attr:`Parameter.kind`): ``"int"`` says "a whole number".
        """
        case = next((c for c in self.one_of if c.applies(values)), None)
        if case and not case.admits(value):
            close = None
            if isinstance(value, str):
                texts = [a for a in case.allowed if isinstance(a, str)]
                close = _did_you_mean(value, texts)
            hint = f" (did you mean {close!r}?)" if close else ""
            return f"{case.condition(values)}choose one of {', '.join(map(repr, case.allowed))}{hint}"
        case = next((c for c in self.range if c.applies(values)), None)
        if case and not case.admits(value):
            if case.interval is None:
                return f"{case.condition(values)}only None is allowed"
            what = "a whole number" if kind == "int" else "a number"
            return f"{case.condition(values)}expected {what} {case.interval.words()}" + (
                " or None" if case.none else ""
            )
        return None


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>[-+]?(?:inf\b|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))
      | (?P<name>[A-Za-z_]\w*)
      | (?P<op>[()\[\],;])
    )""",
    re.VERBOSE,
)


class _Reader:
    """The tokens of one rule, read left to right."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, pos = text, [], 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.lastgroup is None:
                rest = text[pos:].strip()
                hint = (
                    f"; separate a declaration from the help with {SEPARATOR!r} (an em dash between spaces)"
                    if rest[:1] in "-–—:"
                    else ""
                )
                raise ValueError(f"cannot read {rest[:25]!r}{hint}")
            self.tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] in words

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ValueError("the declaration ends too soon")
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        kind, text = self.take()
        if text != word:
            raise ValueError(f"expected {word!r}, found {text!r}")

    def literal(self) -> Any:
        kind, text = self.take()
        if kind in ("str", "num"):
            return float(text) if text.lstrip("+-") == "inf" else ast.literal_eval(text)
        if kind == "name" and text in ("None", "True", "False"):
            return ast.literal_eval(text)
        raise ValueError(f"expected a value (a quoted text, a number, True, False or None), found {text!r}")

    def number(self) -> float:
        kind, text = self.take()
        if kind != "num":
            raise ValueError(f"expected a number (or inf), found {text!r}")
        return float(text) if text.lstrip("+-") == "inf" else ast.literal_eval(text)

    def name(self) -> str:
        kind, text = self.take()
        if kind != "name" or text in ("None", "True", "False"):
            raise ValueError(f"expected a parameter name, found {text!r}")
        return text

    def done(self) -> bool:
        return self.i >= len(self.tokens)


def _condition(r: _Reader) -> tuple[str | None, tuple[Any, ...]]:
    if not r.at("if"):
        return None, ()
    r.take()
    on = r.name()
    r.expect("is")
    when = [r.literal()]
    while r.at("or"):
        r.take()
        when.append(r.literal())
    return on, tuple(when)


def _cases(r: _Reader, kind: str) -> tuple[tuple[Case, ...], tuple[tuple[Any, Any], ...]]:
    cases: list[Case] = []
    formerly: list[tuple[Any, Any]] = []
    while True:
        if kind == "one of":
            allowed = []
            while True:
                value = r.literal()
                allowed.append(value)
                if r.at("("):
                    r.take()
                    r.expect("formerly")
                    formerly.append((r.literal(), value))
                    while r.at(","):
                        r.take()
                        formerly.append((r.literal(), value))
                    r.expect(")")
                if not r.at(","):
                    break
                r.take()
            case = Case(allowed=tuple(allowed))
        elif r.at("None"):
            r.take()
            case = Case(none=True)
        else:
            kind_, bracket = r.take()
            if bracket not in ("(", "["):
                raise ValueError(f"expected a range such as [1, inf) or (0, 0.5), or None, found {bracket!r}")
            low = r.number()
            r.expect(",")
            high = r.number()
            close = r.take()[1]
            if close not in (")", "]"):
                raise ValueError(f"a range ends with ) or ], found {close!r}")
            if low > high:
                raise ValueError(f"the range {bracket}{low}, {high}{close} is empty")
            none = False
            if r.at("or"):
                r.take()
                r.expect("None")
                none = True
            case = Case(interval=Interval(low, high, bracket == "[", close == "]"), none=none)
        on, when = _condition(r)
        if cases and cases[-1].on is None:
            raise ValueError("only the last case may come without a condition")
        cases.append(Case(case.allowed, case.interval, case.none, on, when))
        if r.done():
            return tuple(cases), tuple(formerly)
        r.expect(";")


def parse_declaration(comment: str) -> Declaration | None:
    """Read the declarations at the start of a parameter's comment (grammar in the module docstring).

    Parameters
    ----------
    comment : str
        The comment after ``#`` on the parameter's line, as papermill reads it.

    Returns
    -------
    Declaration or None
        None when the comment declares nothing (it is all help).

    Raises
    ------
    ValueError
        A comment that starts with ``one of:``, ``range:`` or ``required with`` but does
        not follow the grammar; the message says what was expected.

    Examples
    --------
    >>> d = parse_declaration('range: [99, inf) if inference is "bootstrap" or "wild"; [0, inf) — bootstrap draws')
    >>> d.problem(10, {"inference": "wild"}, kind="int"), d.problem(10, {"inference": "cluster"}), d.help
    ("with inference='wild' expected a whole number >= 99", None, 'bootstrap draws')
    >>> parse_declaration("report title shown at the top") is None
    True
    """
    segments = comment.split(SEPARATOR)
    found: dict[str, Any] = {}
    formerly: tuple[tuple[Any, Any], ...] = ()
    i = 0
    while i < len(segments) and segments[i].lstrip().startswith(_KEYWORDS):
        text = segments[i].strip()
        keyword = next(k for k in _KEYWORDS if text.startswith(k))
        kind = keyword.rstrip(": ")
        if kind in found:
            raise ValueError(f"{keyword.strip()!r} is declared twice")
        r = _Reader(text[len(keyword) :])
        if r.done():
            raise ValueError(f"{keyword.strip()!r} declares nothing")
        if kind == "required with":
            names = [r.name()]
            while r.at(","):
                r.take()
                names.append(r.name())
            if not r.done():
                raise ValueError(f"expected ',' or the end, found {r.take()[1]!r}")
            found[kind] = tuple(names)
        else:
            cases, old = _cases(r, kind)
            found[kind] = cases
            formerly += old
        i += 1
    if not found:
        return None
    return Declaration(
        one_of=found.get("one of", ()),
        range=found.get("range", ()),
        required_with=found.get("required with", ()),
        formerly=formerly,
        help=SEPARATOR.join(segments[i:]).strip(),
    )


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
        The ``# comment`` after it, as papermill reads it (``papermill --help-notebook``
        shows the same): declarations, then the help.
    line : int
        Line of the assignment within the cell (1-based).
    annotation : str or None
        The type papermill read from an annotation (``n: int = 3``) or a ``# type: int`` comment, if any;
        values are coerced to the default's type (:attr:`kind`), as always.
    declaration : Declaration or None
        What the comment declares about the values (None: nothing).
    """

    name: str
    default: Any
    comment: str
    line: int
    annotation: str | None = None
    declaration: Declaration | None = None

    @property
    def kind(self) -> str:
        """The type values are coerced to: bool, int, float, str, list, dict or any (default None)."""
        d = self.default
        for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "dict")):
            if isinstance(d, t):
                return name
        return "any"

    @property
    def help(self) -> str:
        """The human description: the comment without its declarations."""
        return self.declaration.help if self.declaration else self.comment


def _close_files(path: Path) -> str:
    """`` (did you mean X?)`` for a notebook path that does not exist, from its folder and the shipped ones."""
    folder = path.parent if path.parent.is_dir() else None
    candidates = {p.name: p for p in folder.glob("*.ipynb")} if folder else {}
    for p in shipped("notebooks").glob("*.ipynb"):
        candidates.setdefault(p.name, p)
    close = _did_you_mean(path.name, list(candidates))
    if close is None:
        return ""
    guess = candidates[close]
    shown = path.with_name(close) if folder and guess.parent.resolve() == folder.resolve() else guess
    return f" (did you mean {shown}?)"


def _read_notebook(notebook: str | Path) -> Any:
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise ParameterError(f"notebook not found: {path}{_close_files(path)}")
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
    Declarations at the start of a comment (``one of:``, ``range:``, ``required with``;
    grammar in this module's docstring) are parsed here, so a malformed one is refused
    before anything runs.

    Examples
    --------
    >>> p = notebook_parameters(notebook_path("matched_evaluation"))["ratio"]
    >>> p.default, p.kind, p.help
    (1, 'int', 'comparison people per programme participant')
    >>> p.comment
    'range: [1, inf) — comparison people per programme participant'
    >>> p.declaration.problem(0, {}, kind=p.kind)
    'expected a whole number >= 1'
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
    problems: list[str] = []
    for name, (line, last, value) in literals.items():
        if name in read:
            comment, annotation = read[name].help, read[name].inferred_type_name
        else:  # a line papermill skips (two '=' on it): its comment, read the way papermill reads one
            text = lines[last - 1] if last <= len(lines) else ""
            comment, annotation = (text.split("#", 1)[1].strip() if "#" in text else ""), "None"
        try:
            declaration = parse_declaration(comment)
        except ValueError as exc:
            problems.append(f"line {line} ({name}): the declaration in its comment does not parse: {exc}")
            declaration = None
        out[name] = Parameter(name, value, comment, line, None if annotation == "None" else annotation, declaration)
    for name, p in out.items():
        unknown = sorted(p.declaration.references() - set(out)) if p.declaration else []
        if unknown:
            problems.append(f"line {p.line} ({name}): the declaration names no parameter of this cell: {unknown}")
    if problems:
        raise ParameterError(
            f"{notebook}: parameters cell: " + "; ".join(problems) + " (the grammar is in evaluator.runner.parameters)"
        )
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


def _differs(p: Parameter, value: Any) -> bool:
    """Is ``value`` other than ``p``'s default? Input files compare as the files they name."""
    if _same(value, p.default):
        return False
    if _is_input(p.name) and isinstance(value, str) and isinstance(p.default, str) and value and p.default:
        try:
            return resolve_data(value, parameter=p.name) != resolve_data(p.default, parameter=p.name)
        except ParameterError:
            return True
    return True


#: Words a sidecar schema can give: parameter -> how to read it from (schema, the outcome column's field).
_FROM_SCHEMA = {
    "title": lambda doc, field: doc.get("title") or field.get("title"),
    "outcome_label": lambda doc, field: field.get("description") or field.get("title"),
}


#: What a sidecar schema needs for each of them (said when a label is missing).
_SCHEMA_KEYS = {"title": 'a "title"', "outcome_label": 'a field named {column!r} with a "description"'}


def _bundled_folder() -> Path:
    from evaluator.data import datasets

    return datasets.path(datasets.NAMES[0]).parent


def _sidecars(data: Path) -> list[Path]:
    """The files that may describe ``data``: ``NAME.schema.json``, then ``NAME.json`` beside it."""
    return [data.with_name(f"{data.stem}.schema.json"), data.with_suffix(".json")]


def _schema_words(data: Path, column: Any) -> tuple[dict[str, str], str]:
    """Words for ``_FROM_SCHEMA``'s parameters from the first sidecar that describes ``column``; and a note."""
    for sidecar in _sidecars(data):
        if not sidecar.is_file():
            continue
        try:
            doc = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return {}, f" ({sidecar.name} beside the data cannot be read: {exc})"
        fields = doc.get("fields") if isinstance(doc, dict) else None
        field = next((f for f in fields or [] if isinstance(f, dict) and f.get("name") == column), None)
        if field is None:
            continue
        words = {}
        for name, read in _FROM_SCHEMA.items():
            text = read(doc, field)
            if isinstance(text, str) and text.strip():
                words[name] = text.strip()
        return words, ""
    return {}, ""


def _data_labels(
    known: Mapping[str, Parameter], given: Mapping[str, Any], values: Mapping[str, Any], unusable: set[str]
) -> tuple[list[str], dict[str, str]]:
    """The ``required with`` rule: (problems, words read from the data's sidecar for parameters not given)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, p in known.items():
        decl = p.declaration
        if decl is None or not decl.required_with or name in given:
            continue
        changed = tuple(
            n for n in decl.required_with if n in given and n not in unusable and _differs(known[n], values[n])
        )
        if changed:
            inputs = tuple(n for n in changed if _is_input(n))
            groups.setdefault(inputs[:1] or changed, []).append(name)
    problems: list[str] = []
    derived: dict[str, str] = {}
    for changed, names in groups.items():
        files = [n for n in ("data_path", *changed) if n in known and _is_input(n) and values.get(n)]
        data_name = files[0] if files and isinstance(values[files[0]], str) else None
        column = values.get("outcome")
        words, note = {}, ""
        if data_name is not None and data_name not in unusable and isinstance(column, str):
            words, note = _schema_words(resolve_data(values[data_name], parameter=data_name), column)
        derived.update({n: words[n] for n in names if n in words})
        missing = [n for n in names if n not in words]
        if not missing:
            continue
        what = " and ".join(f"{n}={given[n]!r}" for n in changed)
        defaults = ", ".join(repr(known[n].default) for n in changed)
        whose = "data set" if any(_is_input(n) for n in changed) else "column"
        they = "its default describes" if len(missing) == 1 else "their defaults describe"
        asked = " and ".join(missing)
        flags = " ".join(f'-p {n} "..."' for n in missing)
        sidecar = ""
        file = resolve_data(values[data_name], parameter=data_name) if data_name and data_name not in unusable else None
        if file is not None and isinstance(column, str) and all(n in _FROM_SCHEMA for n in missing):
            if file.parent != _bundled_folder():  # a bundled set's sidecar is not the user's to write
                keys = " and ".join(_SCHEMA_KEYS[n].format(column=column) for n in missing)
                sidecar = f", or describe the data in {_sidecars(file)[0].name} beside it: a Table Schema with {keys}"
        problems.append(
            f"{asked} must be given: {what} {'are' if len(changed) > 1 else 'is'} not this notebook's own {whose} "
            f"({defaults}), and {they} that {whose}, "
            f"not this one. Give {'it' if len(missing) == 1 else 'both'} ({flags}; in a batch file, under the "
            f"run's parameters){sidecar}{note}"
        )
    return problems, derived


def check_parameters(notebook: str | Path, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and coerce ``given`` against the notebook's parameters cell, before anything runs.

    Collects every problem into one :class:`ParameterError`: unknown names (with the
    closest known one and the list of all), values that cannot be coerced to their
    default's type, input files that do not exist, values outside what the parameter's
    comment declares (``one of:``, ``range:``, in the light of the other values, the
    notebook's defaults included; with the closest allowed value for a misspelling), and
    data labels left at the defaults of other data (``required with data_path``).

    A label required that way may instead come from a sidecar file beside the data,
    ``NAME.schema.json`` (or ``NAME.json``): a Frictionless Table Schema whose field
    named like the ``outcome`` column gives ``outcome_label`` (its ``description``, else
    its ``title``) and whose own ``title`` (else the field's) gives ``title``.

    Parameters
    ----------
    notebook : str or Path
        The notebook.
    given : mapping or None
        Parameter values, as text (command line) or Python values (batch file, API).

    Returns
    -------
    dict
        The given values coerced to their types, former spellings replaced by the current
        ones (each with a :class:`FutureWarning`), plus any label read from the data's sidecar.

    Raises
    ------
    ParameterError
        Listing every problem, each naming the parameter, the value and what is allowed.

    Examples
    --------
    >>> nb = notebook_path("matched_evaluation")
    >>> check_parameters(nb, {"replace": "yes", "ratio": 2.0})
    {'replace': True, 'ratio': 2}
    >>> check_parameters(nb, {"ratoi": 2})
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: ...unknown parameter 'ratoi' (did you mean 'ratio'?)...
    >>> check_parameters(nb, {"distance": "mahalanobis", "caliper": 0.2, "alpha": 0.7})
    Traceback (most recent call last):
    ...
    evaluator.errors.ParameterError: matched_evaluation.ipynb: parameter caliper=0.2: with distance='mahalanobis' \
only None is allowed; parameter alpha=0.7: expected a number > 0 and < 0.5
    """
    known = notebook_parameters(notebook)
    problems: list[str] = []
    out: dict[str, Any] = {}
    failed: set[str] = set()
    for name, value in (given or {}).items():
        if name not in known:
            close = _did_you_mean(name, list(known))
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}; known: {', '.join(known)}")
            continue
        p = known[name]
        try:
            out[name] = _coerce(p, value)
        except ValueError as exc:
            failed.add(name)
            problems.append(f"parameter {name}={value!r}: {exc} (the default is {p.default!r}: {p.help})")
    for name, value in out.items():
        decl = known[name].declaration
        new = decl.renamed(value) if decl else value
        if not _same(new, value):
            out[name] = new
            warnings.warn(
                f"{Path(notebook).name}: parameter {name}={value!r} is deprecated, a former spelling of {new!r}: "
                f"write {name}={new!r} (this run uses {new!r})",
                FutureWarning,
                stacklevel=2,
            )
    for name, value in out.items():
        if _is_input(name) and isinstance(value, str) and value:
            try:
                resolve_data(value, parameter=name)
            except ParameterError as exc:
                failed.add(name)
                problems.append(str(exc))
    values = {name: p.default for name, p in known.items()} | out
    for name, p in known.items():
        if p.declaration is None or name in failed:
            continue
        why = p.declaration.problem(values[name], values, kind=p.kind)
        if why:
            where = "" if name in out else " (the notebook's default)"
            problems.append(f"parameter {name}={values[name]!r}{where}: {why}")
    labels, derived = _data_labels(known, out, values, failed)
    problems += labels
    if problems:
        raise ParameterError(f"{Path(notebook).name}: " + "; ".join(problems))
    return out | derived
