"""The house keeps its shape: layers (import-linter), no private names across subpackages, a light import."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "evaluator"
LINT = Path(sys.executable).with_name("lint-imports")
HEAVY = ("matplotlib", "scipy.stats", "papermill", "nbconvert", "nbclient", "seaborn", "statsmodels", "jinja2")

needs_linter = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def _lint(cwd: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--config", str(config), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True
    )


@needs_linter
def test_the_layers_of_docs_architecture_hold():
    run = _lint(REPO, REPO / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@needs_linter
def test_an_estimator_importing_reporting_breaks_the_layers(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "evaluator", ignore=shutil.ignore_patterns("__pycache__", "*.parquet"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    twfe = tmp_path / "evaluator" / "estimators" / "twfe.py"
    twfe.write_text(twfe.read_text() + "\nfrom evaluator.reporting import html as report_html  # the wrong way\n")
    run = _lint(tmp_path, tmp_path / "pyproject.toml")
    assert run.returncode != 0
    assert "evaluator.estimators is not allowed to import evaluator.reporting" in run.stdout


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def test_no_private_name_is_imported_across_subpackages():
    crossings = []
    for name, path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("evaluator"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    if private and _subpackage(node.module) != _subpackage(name):
                        crossings.append(f"{name}: from {node.module} import {alias.name} (l.{node.lineno})")
    assert not crossings, "private names imported across subpackages:\n" + "\n".join(crossings)


def test_import_evaluator_loads_no_plotting_notebook_or_statistics_stack():
    code = "import sys, evaluator; print('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"import evaluator loaded {heavy}"


def test_public_names_resolve_and_no_module_hides_behind_a_function():
    import importlib

    import evaluator

    for name in evaluator.__all__:
        assert getattr(evaluator, name) is not None, name
    assert callable(evaluator.did) and callable(evaluator.power)
    # the modules behind them keep their own names
    assert importlib.import_module("evaluator.contracts.power").power is evaluator.power
    assert importlib.import_module("evaluator.estimators.twfe").did is evaluator.did


def test_lazy_names_stay_bound_after_every_submodule_is_imported():
    # A package's lazily loaded name that equals one of its submodules' names is overwritten by the
    # module object once that submodule is imported (pytest's doctest collection does so), and
    # ``evaluator.runner.reproduce(...)`` then failed with "'module' object is not callable".
    code = textwrap.dedent(
        """
        import importlib, pkgutil, types, evaluator
        modules = [m for m in pkgutil.walk_packages(evaluator.__path__, "evaluator.")
                   if not m.name.endswith("__main__")]  # importing __main__ runs the command line
        for info in modules:
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional extra (dask) that is not installed
                pass
        bad = []
        for info in [None, *(m for m in modules if m.ispkg)]:  # a module's _NAMES may be labels
            pkg = evaluator if info is None else importlib.import_module(info.name)
            for name, where in getattr(pkg, "_NAMES", {}).items():
                got = getattr(pkg, name)
                if isinstance(got, types.ModuleType) or got is not getattr(importlib.import_module(where), name):
                    bad.append(f"{pkg.__name__}.{name}")
        print(" ".join(bad))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not out, f"these names resolve to the wrong object once every module is imported: {out}"
