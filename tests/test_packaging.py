"""Packaging: pyproject and environment.yml agree; the README opens with the two commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == wanted, f"only in environment.yml: {conda - wanted}; only in pyproject: {wanted - conda}"
    pip_part = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_part and "-e ." in pip_part[0]["pip"]


def test_readme_opens_with_two_commands_and_ci_runs_test():
    lines = [ln for ln in (REPO / "README.md").read_text().splitlines() if ln.strip()]
    code = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert code[0].startswith("make report") and code[1].startswith("make test")
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_console_entry_point_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["evaluator"] == "evaluator.cli:main"


def test_every_module_is_in_the_package_docstring_and_readme():
    import evaluator

    readme = (REPO / "README.md").read_text()
    architecture = (REPO / "docs" / "architecture.md").read_text()
    package = REPO / "evaluator"
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if path.name == "__main__.py" or "/templates/" in rel:
            continue
        shown = rel.removesuffix("/__init__.py") + "/" if path.name == "__init__.py" else rel
        if shown == "evaluator/":
            continue
        assert f"`{shown}`" in readme, f"{shown} missing from the README's module map"
    for item in sorted(package.iterdir()):
        if item.name.startswith("__") or item.name in {"py.typed"}:
            continue
        if item.is_dir() and not (item / "__init__.py").exists():
            continue
        stem = item.stem
        assert f"``{stem}``" in evaluator.__doc__, f"{stem} missing from evaluator/__init__.py docstring"
        assert stem in architecture, f"{stem} missing from docs/architecture.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
