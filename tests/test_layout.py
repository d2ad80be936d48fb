"""The layout's one rule: dependencies point one way.

mlplatform.sdk and mlplatform.warehouse import no app; tables and builds import neither each other
nor batchjobs; batchjobs may import both. Every import counts, also one inside a function.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APPS = ("tables", "builds", "batchjobs")

# package (a folder of the repo) -> the top-level packages it must never import
FORBIDDEN = {
    "mlplatform/sdk": APPS,
    "mlplatform/warehouse": APPS,
    "tables": ("builds", "batchjobs"),
    "builds": ("tables", "batchjobs"),
}


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at any depth (absolute names only: the project uses no others)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def wrong_way(package: str) -> list[str]:
    """'path: module' for each import of a forbidden package in ``package``'s modules."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for module in sorted(imported_modules(path.read_text())):
            if module.split(".")[0] in FORBIDDEN[package]:
                found.append(f"{path.relative_to(REPO)}: {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_the_wrong_way(package):
    assert (REPO / package).is_dir()
    assert wrong_way(package) == []


def test_the_check_sees_imports_at_any_depth():
    source = (
        "import os\nfrom builds.models import Build\n\n"
        "def f():\n    import batchjobs.tasks\n    from tables import selectors\n"
    )
    assert imported_modules(source) == {"os", "builds.models", "batchjobs.tasks", "tables"}


def test_the_check_fails_on_a_wrong_way_import(tmp_path, monkeypatch):
    (tmp_path / "builds").mkdir()
    (tmp_path / "builds" / "bad.py").write_text("def f():\n    from batchjobs.models import BatchJob\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert wrong_way("builds") == ["builds/bad.py: batchjobs.models"]
