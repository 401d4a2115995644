"""The ``evaluator`` command.

Subcommands::

    evaluator simulate NAME --seed S --out PATH      synthetic data with a known truth
    evaluator validate PATH --schema panel --columns unit=id time=month ...
    evaluator demo --out reports                     demo data and reports (``make report``)

Errors on user input print one clear message and exit with status 2 (bad
arguments) or 1 (invalid data); no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluator import simulate
from evaluator.data import load_individuals, load_panel
from evaluator.errors import EvaluatorError


def _parse_value(text: str) -> Any:
    """A command-line value as JSON where it parses (numbers, lists), else as text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"evaluator: {what} '{item}' must look like key=value")
        key, value = item.split("=", 1)
        if "," in value and what == "--columns":
            out[key] = [v for v in value.split(",") if v]
        else:
            out[key] = _parse_value(value) if what == "--set" else value
    return out


def cmd_simulate(args: argparse.Namespace) -> int:
    params = _pairs(args.set, "--set")
    generator = simulate.SCENARIOS[args.name]
    try:
        sim = generator(seed=args.seed, **params)
    except TypeError as exc:
        raise SystemExit(f"evaluator simulate {args.name}: {exc}; see `help(evaluator.simulate.{args.name})`") from None
    loader = load_panel if sim.schema == "panel" else load_individuals
    loader(sim.data, columns=sim.columns)  # what we write must pass its own contract
    from evaluator.report import write_frame

    try:
        out = write_frame(sim.data, Path(args.out))
    except ValueError as exc:
        raise SystemExit(f"evaluator: --out {args.out}: {exc}") from None
    truth_path = out.with_name(out.stem + ".truth.json")
    truth = {k: v for k, v in sim.truth.items() if not callable(v)}
    from evaluator.results import _jsonable

    truth_path.write_text(
        json.dumps({"scenario": args.name, "params": _jsonable(sim.params), "columns": sim.columns,
                    "schema": sim.schema, "truth": _jsonable(truth)}, indent=2),
        encoding="utf-8",
    )
    print(f"wrote {len(sim.data):,} rows to {out} (truth and column mapping in {truth_path})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    columns = _pairs(args.columns, "--columns")
    loader = load_panel if args.schema == "panel" else load_individuals
    frame = loader(args.path, schema=args.schema, columns=columns)
    roles = frame.attrs["evaluator"]["columns"]
    print(f"{args.path}: valid {args.schema} data, {len(frame):,} rows; roles: {roles}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from evaluator import report

    index = report.demo(out=Path(args.out), data_dir=Path(args.data))
    print(f"demo written: {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluator", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write synthetic data with a known truth")
    p.add_argument("name", choices=sorted(simulate.SCENARIOS), help="scenario")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--out", required=True, help="output file, .parquet or .csv")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="generator arguments, e.g. n_pool=1000000")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="validate a data file against its schema")
    p.add_argument("path", help="a .csv or .parquet file")
    p.add_argument("--schema", default="panel", help="panel, individuals, or a path to a schema .json")
    p.add_argument("--columns", nargs="*", metavar="ROLE=COLUMN", help="e.g. unit=employee_id outcome=a,b")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", help="generate demo data and render the demo reports")
    p.add_argument("--out", default="reports", help="report folder")
    p.add_argument("--data", default="data/demo", help="folder for the generated demo data")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evaluator`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EvaluatorError as exc:
        print(f"evaluator {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
