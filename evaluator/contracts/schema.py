"""Validate a contract against ``data_schemas/contract.schema.json``, every problem in one error.

The schema file keeps the Table Schema field style (``name``, ``type``, ``description``,
``constraints``), nested for a contract that is not a table, so that the register's data
steward reads one style for every input. :func:`contract_json_schema` says the same in
JSON Schema (Draft 2020-12) and :mod:`jsonschema` checks it, collecting every error with
``iter_errors``; this module only turns each error into a :class:`~evaluator.errors.Problem`
that names the field by its path (``payment.thresholds.overall``) and says what to do,
in the order the fields are written in the schema. The rules a schema cannot say (which
terms each payment family needs, totals that must agree) are :func:`_rule_problems`.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evaluator.errors import ContractError, Problem

__all__ = ["as_date", "contract_json_schema", "money_hint", "validate_contract"]

#: What to write instead, by the type the schema expects.
TYPE_HINTS = {
    "number": "write a number without units or thousands separators, e.g. 2.1 or 5000000",
    "integer": "write a whole number",
    "string": "write text (quote it in YAML if it looks like a number or date)",
    "object": "write a mapping of 'key: value' lines indented under this field",
    "array": "write a list",
    "date": "write an ISO date, YYYY-MM-DD",
    "boolean": "write true or false",
}
#: Fields holding money: their minimum gets a hint about the direction of payments.
MONEY_FIELDS = frozenset({"price", "cap", "cohort_payment", "final_payment", "capital", "bonus_cap", "unit_value"})
#: Fields written as fractions: a value above their maximum is probably a percentage.
FRACTION_FIELDS = ("discount_rate", "share", "decay")
#: The order in which the checks of one field are reported (the type first: nothing else is checked then).
_CHECK_ORDER = {
    "required": 0,
    "type": 0,
    "format": 0,
    "not": 0,
    "enum": 1,
    "minimum": 2,
    "exclusiveMinimum": 3,
    "maximum": 4,
}
#: The checks that say a value is of the wrong type (``not`` refuses null for a required date).
_TYPE_CHECKS = frozenset({"type", "format", "not"})


def as_date(value: Any) -> dt.date | None:
    """A date from a date, a datetime or an ISO string (``YYYY-MM-DD``); ``None`` when it is none of these.

    >>> as_date("2024-03-01"), as_date("1 March 2024")
    (datetime.date(2024, 3, 1), None)
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def money_hint(path: str) -> str:
    """What to say about a value below a field's minimum (``payment.price``, ``horizon_years`` ...)."""
    name = path.rsplit(".", 1)[-1]
    if name in MONEY_FIELDS:
        return "money amounts are non-negative; a payment to the commissioner is not an outcome payment"
    if name == "horizon_years":
        return "the horizon is a positive number of years"
    return "check the sign and the unit"


# -- the schema, in JSON Schema ------------------------------------------------------------
def contract_json_schema() -> dict[str, Any]:
    """``data_schemas/contract.schema.json`` as a JSON Schema (Draft 2020-12), a fresh copy.

    Each descriptor field becomes a property with its ``description``; ``required``,
    ``enum``, ``minimum``, ``exclusiveMinimum`` and ``maximum`` keep their meaning. An
    optional field may be ``null`` (not given); a field of type ``date`` is
    ``format: date`` (a YAML date or an ISO string); a field's ``fields`` are its
    properties and no others (``propertyNames``), its ``values`` the schema of every
    value of a free mapping (``additionalProperties``), an array's ``items`` its items.

    Examples
    --------
    >>> s = contract_json_schema()
    >>> s["$schema"], s["required"]
    ('https://json-schema.org/draft/2020-12/schema', ['name', 'outcome', 'payment'])
    >>> s["properties"]["payment"]["properties"]["share"]
    ... # doctest: +NORMALIZE_WHITESPACE
    {'description': 'Share of the fiscal gain (fiscal_share) or of the savings (savings_share) that is paid,
    between 0 and 1.', 'type': ['number', 'null'], 'minimum': 0, 'maximum': 1}
    """
    return copy.deepcopy(_json_schema())


@lru_cache(maxsize=1)
def _json_schema() -> dict[str, Any]:
    from evaluator.data.load import read_schema

    descriptor = read_schema("contract")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": descriptor.get("title", ""),
        "description": descriptor.get("description", ""),
        "type": "object",
        **_object(descriptor["fields"]),
    }


def _object(fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def required(f: Mapping[str, Any]) -> bool:
        return bool(f.get("constraints", {}).get("required"))

    return {
        "propertyNames": {"enum": [f["name"] for f in fields]},
        "required": [f["name"] for f in fields if required(f)],
        "properties": {f["name"]: _property(f, nullable=not required(f)) for f in fields},
    }


def _property(desc: Mapping[str, Any], *, nullable: bool) -> dict[str, Any]:
    kind = desc.get("type", "any")
    cons = desc.get("constraints", {})
    out: dict[str, Any] = {}
    if desc.get("description"):
        out["description"] = desc["description"]
    if kind == "date":
        # No "type": a YAML date is a date object, not a string; the format check takes both.
        out["format"] = "date"
        if not nullable:
            out["not"] = {"type": "null"}
    elif kind != "any":
        out["type"] = [kind, "null"] if nullable else kind
    if "enum" in cons:
        out["enum"] = [*cons["enum"], *([None] if nullable else [])]
    out.update({k: cons[k] for k in ("minimum", "exclusiveMinimum", "maximum") if k in cons})
    if kind == "object" and "fields" in desc:
        out.update(_object(desc["fields"]))
    elif kind == "object" and "values" in desc:
        out["additionalProperties"] = _property(desc["values"], nullable=False)
    if kind == "array" and "items" in desc:
        out["items"] = _property(desc["items"], nullable=False)
    return out


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema
    from jsonschema.validators import extend

    def number(_checker: Any, x: Any) -> bool:
        # A contract's numbers are finite: NaN and infinity read from YAML are refused.
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    # The Python shapes a mapping read from YAML or built by hand may take.
    types = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "number": number,
            "integer": lambda _c, x: isinstance(x, int) and not isinstance(x, bool),
            "object": lambda _c, x: isinstance(x, Mapping),
            "array": lambda _c, x: isinstance(x, (list, tuple)),
        }
    )
    formats = jsonschema.FormatChecker(formats=())
    formats.checks("date")(lambda x: x is None or as_date(x) is not None)
    schema = _json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    cls = extend(jsonschema.Draft202012Validator, type_checker=types)
    return cls(schema, format_checker=formats)


# -- validation ------------------------------------------------------------------------------
def validate_contract(raw: Mapping[str, Any], *, source: str | None = None) -> None:
    """Check a contract mapping against ``data_schemas/contract.schema.json``.

    Every problem is collected into one :class:`~evaluator.errors.ContractError`;
    each names the field by its path (``payment.thresholds.overall``) and says what
    to do.

    Examples
    --------
    >>> validate_contract({"name": "x", "outcome": {"metric": "y", "unit": "days", "direction": "down"},
    ...                    "payment": {"family": "rate_card", "price": -5}})
    Traceback (most recent call last):
    ...
    evaluator.errors.ContractError: 2 problems found:
    1. field 'outcome.direction': 'down' is not allowed
        fix: use one of ['decrease', 'increase']
    2. field 'payment.price': -5 is below the minimum 0
        fix: money amounts are non-negative; a payment to the commissioner is not an outcome payment
    """
    if not isinstance(raw, Mapping):
        raise ContractError([Problem(f"a contract is a mapping of fields, found {type(raw).__name__}")], source=source)
    problems = _schema_problems(raw) + _rule_problems(raw)
    if problems:
        raise ContractError(problems, source=source)


def _schema_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """jsonschema's errors as problems, sorted as the fields are written in the schema."""
    found: list[tuple[tuple[Any, ...], int, str, Problem]] = []
    missing: dict[tuple[Any, ...], list[str]] = {}
    for error in _validator().iter_errors(raw):
        parent = tuple(error.absolute_path)
        if error.validator == "required":
            # jsonschema names the property in its message only: pair the errors with the missing names in order.
            names = missing.setdefault(parent, [n for n in error.validator_value if n not in error.instance])
            path, check = (*parent, names.pop(0)), "required"
        elif list(error.schema_path)[-2:] == ["propertyNames", "enum"]:
            path, check = (*parent, error.instance), "unknown"
        else:
            path, check = parent, str(error.validator)
        field = _locate(raw, path, unknown=check == "unknown")
        found.append((field.key, _CHECK_ORDER.get(check, 0), check, _problem(check, field, error)))
    # A value of the wrong type is reported for its type alone: nothing else can be said of it.
    typed = {key for key, _, check, _ in found if check in _TYPE_CHECKS}
    kept = [f for f in found if f[0] not in typed or f[2] in _TYPE_CHECKS]
    return [problem for *_, problem in sorted(kept, key=lambda f: f[:2])]


@dataclass(frozen=True)
class _Field:
    """Where a problem is: sort key, dotted path, its property schema and whether it is a required field."""

    key: tuple[tuple[int, int, int], ...]
    where: str
    schema: Mapping[str, Any]
    required: bool


def _locate(raw: Any, path: Sequence[Any], *, unknown: bool = False) -> _Field:
    """The field at ``path`` of ``raw``, walking the JSON schema beside it.

    Within a mapping of named fields the unknown keys come first (as written), then the
    fields in schema order; a free mapping or a list keeps its own order; a field's own
    checks come before those of what it holds (the key of a field is a prefix of theirs).
    """
    schema: Mapping[str, Any] = _json_schema()
    node, where, key, required = raw, "", [], False
    for i, step in enumerate(path):
        if isinstance(node, (list, tuple)):
            where += f"[{step}]"
            key.append((1, 1, step))
            schema, required = schema.get("items", {}), False
            node = node[step] if step < len(node) else None
            continue
        where += f"{'.' if where else ''}{step}"
        keys = list(node) if isinstance(node, Mapping) else []
        position = keys.index(step) if step in keys else len(keys)
        if "properties" in schema and unknown and i == len(path) - 1:
            key.append((1, 0, position))
            schema, required = {}, False
        elif "properties" in schema:
            key.append((1, 1, list(schema["properties"]).index(step)))
            schema, required = schema["properties"][step], step in schema.get("required", ())
        else:
            key.append((1, 1, position))
            schema, required = schema.get("additionalProperties", {}), False
        node = node.get(step) if isinstance(node, Mapping) else None
    return _Field(tuple(key), where, schema, required)


def _kind(schema: Mapping[str, Any]) -> str:
    if schema.get("format") == "date":
        return "date"
    kinds = schema.get("type", "any")
    kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds if k != "null"]
    return kinds[0] if kinds else "any"


def _problem(check: str, field: _Field, error: Any) -> Problem:
    value, where = error.instance, field.where
    if check == "unknown":
        known = list(error.validator_value)
        prefix = where[: len(where) - len(str(value))]
        close = difflib.get_close_matches(str(value), known, n=1)
        return Problem(
            f"field '{where}' is not part of the contract schema",
            hint=(f"did you mean '{prefix}{close[0]}'? " if close else "") + f"the fields here are {sorted(known)}",
        )
    if check == "required" or (check in _TYPE_CHECKS and value is None and field.required):
        # A field written with no value (``share:`` or ``share: null``) is a field not given.
        return Problem(f"field '{where}' is required but missing", hint=field.schema.get("description", ""))
    if check in _TYPE_CHECKS:
        kind = _kind(field.schema)
        return Problem(
            f"field '{where}': expected a {kind}, found {value!r} ({type(value).__name__})",
            hint=TYPE_HINTS.get(kind, ""),
        )
    if check == "enum":
        allowed = [v for v in error.validator_value if v is not None]
        close = difflib.get_close_matches(str(value), [str(v) for v in allowed], n=1)
        return Problem(
            f"field '{where}': {value!r} is not allowed",
            hint=(f"did you mean '{close[0]}'? " if close else "") + f"use one of {allowed}",
        )
    bound = error.validator_value
    if check == "minimum":
        return Problem(f"field '{where}': {value} is below the minimum {bound}", hint=money_hint(where))
    if check == "exclusiveMinimum":
        return Problem(f"field '{where}': {value} must be greater than {bound}", hint=money_hint(where))
    if check == "maximum":
        hint = f"use a value of at most {bound}"
        if where.endswith(FRACTION_FIELDS):
            hint = (
                f"write it as a fraction: {value / 100:g} for {value:g}% "
                "(it looks like a percentage written by mistake)"
            )
        return Problem(f"field '{where}': {value} is above the maximum {bound}", hint=hint)
    return Problem(f"field '{where}': {error.message}")


def _rule_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """The rules a JSON schema cannot say (``x-evaluator-rules`` of the schema)."""
    problems: list[Problem] = []

    def mapping(x: Any) -> Mapping[str, Any]:
        # A part of the wrong type is already a schema problem; the rules read it as empty.
        return x if isinstance(x, Mapping) else {}

    pay = mapping(raw.get("payment"))
    family = pay.get("family")
    family = family if isinstance(family, Hashable) else None
    thr = mapping(pay.get("thresholds"))

    def need(name: str, why: str) -> None:
        if pay.get(name) is None:
            problems.append(Problem(f"field 'payment.{name}' is required for {family}", hint=why))

    if family == "counterfactual_threshold":
        if thr.get("per_cohort") is None and thr.get("overall") is None:
            problems.append(
                Problem(
                    "field 'payment.thresholds.overall' (or 'payment.thresholds.per_cohort') is required "
                    "for counterfactual_threshold",
                    hint="state the improvement that triggers payment, e.g. overall: 0.075 for a 7.5% fall",
                )
            )
        if all(pay.get(k) is None for k in ("cohort_payment", "final_payment", "price")):
            problems.append(
                Problem(
                    "field 'payment.final_payment' (or cohort_payment or price) is required for "
                    "counterfactual_threshold",
                    hint="say what is paid when a threshold is met",
                )
            )
    elif family in {"fiscal_share", "savings_share"}:
        need("share", "the share of the gain that is paid, e.g. 0.5")
        if family == "savings_share":
            need("unit_value", "the money saved per contract unit of improvement per participant")
    elif family == "pre_post_target":
        if thr.get("overall") is None:
            problems.append(
                Problem(
                    "field 'payment.thresholds.overall' is required for pre_post_target",
                    hint="the target improvement against the baseline, e.g. 2.1 (fewer days per person per year)",
                )
            )
        if pay.get("final_payment") is None and pay.get("price") is None:
            problems.append(
                Problem("field 'payment.final_payment' (or price) is required for pre_post_target", hint="")
            )
    elif family == "rate_card":
        need("price", "the price paid per verified outcome")
    if pay.get("measure") == "relative" and family not in {None, "counterfactual_threshold"}:
        problems.append(
            Problem(
                "field 'payment.measure': 'relative' is only for counterfactual_threshold",
                hint="remove it or use 'absolute'",
            )
        )
    if thr.get("per_cohort") is not None and family not in {None, "counterfactual_threshold"}:
        problems.append(
            Problem(
                "field 'payment.thresholds.per_cohort' is only for counterfactual_threshold",
                hint="use payment.thresholds.overall",
            )
        )
    part = mapping(raw.get("participants"))
    total, by = part.get("total"), part.get("by_cohort")
    if isinstance(total, (int, float)) and isinstance(by, Mapping):
        values = [v for v in by.values() if isinstance(v, (int, float))]
        if len(values) == len(by) and not math.isclose(sum(values), total, rel_tol=1e-9):
            problems.append(
                Problem(
                    f"field 'participants.total' ({total:g}) differs from the sum of participants.by_cohort "
                    f"({sum(values):g})",
                    hint="make them agree or give only one of them",
                )
            )
    return problems
