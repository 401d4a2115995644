"""The ``evaluator`` command.

Subcommands::

    evaluator simulate NAME --seed S --out PATH      synthetic data with a known truth
    evaluator validate PATH --schema panel --columns unit=id time=month ...
    evaluator report NOTEBOOK --out reports/NAME [--data PATH] [-p KEY VALUE ...]
                                                     one parameterised notebook -> HTML report
    evaluator batch BATCH.yaml --out reports         many reports in parallel, with reports/index.html
    evaluator demo --out reports                     the demo batch (``make report``)
    evaluator reproduce reports/NAME/manifest.json   re-run a report and compare every number
    evaluator disclosure-check reports/NAME/report.html
                                                     look for counts below min_cell and individual rows

Errors on user input print one clear message and exit with status 2 (bad
arguments) or 1 (invalid data); no traceback.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluator.errors import EvaluatorError

# The commands import what they use when they run: `evaluator report` launches its kernel before
# anything heavy (pandas, papermill) is imported, and `evaluator --help` imports neither.


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
    from evaluator.data import simulate
    from evaluator.data.load import load_individuals, load_panel

    params = _pairs(args.set, "--set")
    generator = simulate.SCENARIOS[args.name]
    try:
        sim = generator(seed=args.seed, **params)
    except TypeError as exc:
        raise SystemExit(f"evaluator simulate {args.name}: {exc}; see `help(evaluator.simulate.{args.name})`") from None
    loader = load_panel if sim.schema == "panel" else load_individuals
    loader(sim.data, columns=sim.columns)  # what we write must pass its own contract
    from evaluator.files import write_frame

    try:
        out = write_frame(sim.data, Path(args.out))
    except ValueError as exc:
        raise SystemExit(f"evaluator: --out {args.out}: {exc}") from None
    truth_path = out.with_name(out.stem + ".truth.json")
    truth = {k: v for k, v in sim.truth.items() if not callable(v)}
    from evaluator.files import jsonable

    truth_path.write_text(
        json.dumps(
            {
                "scenario": args.name,
                "params": jsonable(sim.params),
                "columns": sim.columns,
                "schema": sim.schema,
                "truth": jsonable(truth),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {len(sim.data):,} rows to {out} (truth and column mapping in {truth_path})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from evaluator.data.load import load_cross_sections, load_individuals, load_panel

    columns = _pairs(args.columns, "--columns")
    loaders = {"panel": load_panel, "cross_sections": load_cross_sections}
    loader = loaders.get(args.schema, load_individuals)
    frame = loader(args.path, schema=args.schema, columns=columns)
    roles = frame.attrs["evaluator"]["columns"]
    print(f"{args.path}: valid {args.schema} data, {len(frame):,} rows; roles: {roles}")
    return 0


def _report_kernels() -> Any:
    """A pool holding the kernel of an ``evaluator report``, launched now (see :func:`main`)."""
    from evaluator.runner.kernels import KernelPool, kernel_env

    kernels = KernelPool(kernel_env(threads=1), spares=0)
    try:
        kernels.launch()
    except Exception:  # run_report starts one again and reports why it cannot
        pass
    return kernels


def cmd_report(args: argparse.Namespace) -> int:
    # The kernel is fresh and the run's own, as run_report's would be (same environment, one BLAS
    # thread: its default threads); it boots while this process imports papermill and checks parameters.
    kernels = getattr(args, "kernels", None) or _report_kernels()
    try:
        from evaluator.runner import run as report

        return report.main_report(
            args.notebook,
            args.out,
            args.data,
            args.param,
            progress=not args.no_progress,
            timeout=args.timeout,
            pdf=args.pdf,
            kernels=kernels,
        )
    finally:
        kernels.close()  # the kernel of a run refused before it ran (bad parameters) too


def cmd_reproduce(args: argparse.Namespace) -> int:
    from evaluator.runner import run as report

    try:
        rep = report.reproduce(args.manifest, out=args.out, progress=not args.no_progress)
    except report.ParameterError as exc:
        print(f"evaluator reproduce: refused: {exc}", file=sys.stderr)
        return 2
    print(rep)
    return 0 if rep.identical else 1


def cmd_disclosure(args: argparse.Namespace) -> int:
    from evaluator.reporting.disclosure import disclosure_check

    failed = 0
    for path in args.paths:
        if not Path(path).exists():  # a report file, a sidecar or a report folder
            print(f"evaluator disclosure-check: no such file {path}", file=sys.stderr)
            return 2
        rep = disclosure_check(Path(path), min_cell=args.min_cell)
        print(rep)
        failed += not rep.ok
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from evaluator.runner import batch
    from evaluator.runner.parameters import notebook_path

    args.batch = str(notebook_path("demo_batch.yaml"))
    return batch.cli_batch(args)


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser that can add its arguments when it is first used, not when it is built.

    ``evaluator simulate`` lists its scenarios as the choices of its ``name``, and they are only
    known by importing :mod:`evaluator.simulate` (pandas, numpy: 0.7 s), which no other command needs.
    """

    def __init__(self, *args: Any, add_arguments: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _arguments(self) -> None:
        add, self._add_arguments = self._add_arguments, None
        if add is not None:
            add(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._arguments()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._arguments()
        return super().format_help()


def _simulate_arguments(p: argparse.ArgumentParser) -> None:
    from evaluator.data import simulate

    p.add_argument("name", choices=sorted(simulate.SCENARIOS), help="scenario")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--out", required=True, help="output file, .parquet or .csv")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="generator arguments, e.g. n_pool=1000000")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluator", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("simulate", help="write synthetic data with a known truth", add_arguments=_simulate_arguments)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="validate a data file against its schema")
    p.add_argument("path", help="a .csv or .parquet file")
    p.add_argument("--schema", default="panel", help="panel, cross_sections, individuals, or a path to a schema .json")
    p.add_argument("--columns", nargs="*", metavar="ROLE=COLUMN", help="e.g. unit=employee_id outcome=a,b")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("report", help="run one parameterised notebook into an HTML report")
    p.add_argument("notebook", help="a .ipynb file, or did_evaluation / matched_evaluation")
    p.add_argument("--out", required=True, help="folder of this report, e.g. reports/sick-leave")
    p.add_argument("--data", default=None, help="data file (sets the notebook's data_path)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help="a notebook parameter")
    p.add_argument("--timeout", type=float, default=None, help="seconds any one cell may take")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--pdf", action="store_true", help="also print report.pdf (A4) with headless Chromium, if present")
    p.set_defaults(func=cmd_report)

    from evaluator.runner import batch

    batch.add_batch_parser(sub)

    p = sub.add_parser("reproduce", help="re-run a report from its manifest and compare every number")
    p.add_argument("manifest", help="reports/NAME/manifest.json (or the folder)")
    p.add_argument("--out", default=None, help="folder for the re-run (default: beside the original)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("disclosure-check", help="scan rendered reports for small counts and individual rows")
    p.add_argument("paths", nargs="+", help="report.html or executed .ipynb files")
    p.add_argument("--min-cell", type=int, default=5, help="smallest count that may be shown (default 5)")
    p.set_defaults(func=cmd_disclosure)

    p = sub.add_parser("demo", help="render the demo reports (the demo batch) into --out")
    batch.add_run_options(p)
    p.set_defaults(func=cmd_demo)
    return parser


def _skip_unused_imports() -> None:
    """Keep jsonschema from loading ``rfc3987_syntax``, which compiles a grammar for 0.7 s at import.

    jsonschema imports it, when installed, only to check the ``iri`` string format; papermill
    reaches jsonschema through nbformat, so every ``evaluator report`` paid for it. Nothing this
    command runs checks that format: nbformat validates without a format checker, and contract
    files are checked with no formats at all (``evaluator/contracts/schema.py``). Marking the
    module as absent (as if it were not installed) is what jsonschema expects and handles.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]


@functools.cache  # registered once: an in-process caller (a test) calling main() again adds nothing
def _quick_exit() -> None:
    """Have this process freeze its objects when it exits, so that it ends in 0.05 s instead of 0.3 s.

    A report run leaves pandas, nbconvert and a rendered page in memory, and the interpreter's last
    garbage collections at exit walk all of it; nothing is left to collect then that the operating
    system does not free. Registered once, at exit only: an in-process caller (a test) keeps its gc.
    """
    atexit.register(gc.freeze)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evaluator`` command."""
    _skip_unused_imports()
    _quick_exit()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `evaluator report` launches its kernel before anything else, even its parser (0.15 s): the kernel
    # boots (0.7 s) while this process imports papermill and checks the parameters
    kernels = _report_kernels() if argv[:1] == ["report"] and not {"-h", "--help"} & set(argv) else None
    try:
        args = build_parser().parse_args(argv)
        args.kernels = kernels
        try:
            return int(args.func(args))
        except EvaluatorError as exc:
            print(f"evaluator {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    finally:
        if kernels is not None:
            kernels.close()  # bad arguments (argparse exits) too


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
