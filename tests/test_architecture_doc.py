"""ARCHITECTURE.md stays true to the code: every path and ``cgankd.*`` name it cites exists,
and every rule of the workflow has its row. A rename or a new rule that skips the page fails
here instead of leaving a newcomer with a stale map. Text only: no torch, well under a second.
"""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "ARCHITECTURE.md"
REPO_DIRS = ("cgankd/", "rules/", "workflow_scripts/", "tests/", "config/")


def cited() -> list[str]:
    """Every backticked span of the page, split at spaces and ``+``."""
    spans = re.findall(r"`([^`\n]+)`", DOC.read_text())
    return [word for span in spans for word in re.split(r"[\s+]+", span) if word]


def table_rules() -> set[str]:
    """The rule names in the first column of the rule table."""
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def defined_names(module: Path) -> set[str]:
    """Top-level functions, classes, assignments and imports of a module."""
    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def test_every_cited_repo_path_exists():
    paths = [w.strip(",;:()") for w in cited() if w.startswith(REPO_DIRS)]
    assert len(paths) > 20  # the page cites its files; an empty match means the regex broke
    missing = [p for p in paths
               if not list(REPO.glob(re.sub(r"<[^>]+>", "*", p).rstrip("/")))]
    assert not missing, f"ARCHITECTURE.md cites paths that do not exist: {missing}"


def test_every_cited_package_name_exists():
    dotted = [w for w in cited() if re.fullmatch(r"cgankd(\.\w+)+", w)]
    assert len(dotted) > 10
    missing = []
    for name in dotted:
        parts = name.split(".")
        if (REPO / Path(*parts)).is_dir() or (REPO / Path(*parts)).with_suffix(".py").is_file():
            continue  # a package or a module
        module = (REPO / Path(*parts[:-1])).with_suffix(".py")
        if not module.is_file():
            module = REPO / Path(*parts[:-1]) / "__init__.py"
        if not module.is_file() or parts[-1] not in defined_names(module):
            missing.append(name)
    assert not missing, f"ARCHITECTURE.md cites names the package does not define: {missing}"


def test_every_rule_has_a_row_and_every_row_is_a_rule():
    rules = set(re.findall(r"^\s*rule (\w+):", "".join(
        p.read_text() for p in sorted((REPO / "rules").glob("*.smk"))), re.M))
    assert rules, "no rules found in rules/*.smk"
    assert table_rules() == rules


def test_every_adapter_has_a_row():
    adapters = {p.name for p in (REPO / "workflow_scripts").glob("*.py")}
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    named = {a for row in rows for a in re.findall(r"`(\w+\.py)`", row.split("|")[3])}
    assert named == adapters
