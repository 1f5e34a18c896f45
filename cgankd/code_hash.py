"""Hashes of the code a stage runs, read from the import graph of the ``cgankd`` package.

A stage's hash covers its entry modules and every ``cgankd`` module they import, directly or
through others, each counted by its syntax tree without docstrings (comments are not in the
tree). Editing a comment or a docstring therefore reruns nothing, and editing code reruns exactly
the stages whose imports reach it. Imports of other packages (torch, numpy) belong to the
environment, which ``provenance.volatile_provenance`` records.

Torch-free and quick: the Snakefile computes these hashes each time Snakemake plans, and on a
cluster each job plans again. Parsing the package takes about half a second, so each file's
result is kept in ``__pycache__/`` under its content hash, and only edited files are parsed.
"""

import ast
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "cgankd"
PACKAGE_DIR = Path(__file__).resolve().parent
# Where each file's parse result is kept, under the package folder it describes; the Python
# version is part of the key, as the syntax tree's text may change with it.
CACHE_FILE = Path("__pycache__") / "cgankd-code-hash.json"
_PYTHON = "{}.{}".format(*sys.version_info[:2])

# one file's parse: (hash of its docstring-free tree, modules it imports, names that may be ones)
Parsed = tuple[str, list[str], list[str]]


def code_hash(entries: Iterable[str], root: Path = PACKAGE_DIR) -> str:
    """Hash of the code run by importing the modules ``entries`` (dotted names in ``cgankd``).

    ``root`` is the package folder (a copy in tests).
    """
    digest = hashlib.sha256()
    for name, tree_hash in sorted(_graph(entries, root).items()):
        digest.update(f"{name}\0{tree_hash}\n".encode())
    _save_cache(root)
    return digest.hexdigest()[:16]


def covered_modules(entries: Iterable[str], root: Path = PACKAGE_DIR) -> set[str]:
    """``entries`` and every ``cgankd`` module they import, directly or through others.

    Imports are read from the source, those inside functions included, so the set holds every
    module a run can import without naming it in a string. Parent packages count too: importing
    ``cgankd.kd.crd`` runs ``cgankd/kd/__init__.py``.
    """
    return set(_graph(entries, root))


def _graph(entries: Iterable[str], root: Path) -> dict[str, str]:
    """The modules ``covered_modules`` describes, each with the hash of its tree."""
    files = functools.cache(lambda name: _module_file(root, name))
    trees: dict[str, str] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in trees:
            continue
        path = files(name)
        if path is None:
            raise ValueError(f"code_hash: no module {name} under {root}")
        trees[name], modules, maybe_modules = _module(root, path, name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(modules)
        # ``from cgankd.x import y`` imports the submodule y if there is one, else a name in x
        todo.extend(m for m in maybe_modules if files(m) is not None)
    return trees


def _module_file(root: Path, name: str) -> Path | None:
    """``cgankd.a.b`` -> ``root/a/b.py`` or ``root/a/b/__init__.py``; None if neither exists."""
    head, *parts = name.split(".")
    if head != PACKAGE:
        return None
    base = root.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if parts and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module(root: Path, path: Path, name: str) -> Parsed:
    """The parse of module ``name`` (file ``path``), from the cache of package folder ``root``."""
    source = path.read_bytes()
    is_package = path.name == "__init__.py"
    # name and kind are part of the key: relative imports resolve against them
    key = f"{name}:{int(is_package)}:{hashlib.sha256(source).hexdigest()}"
    cache = _cache(root)
    if key not in cache["files"]:
        cache["files"][key] = _parse(source, name, is_package)
        cache["dirty"] = True
    cache["used"].add(key)
    return cache["files"][key]


@functools.lru_cache(maxsize=None)
def _cache(root: Path) -> dict:
    """This process's parse results for package folder ``root``, started from its cache file."""
    files: dict[str, Parsed] = {}
    try:
        stored = json.loads((root / CACHE_FILE).read_text())
        if stored.get("python") == _PYTHON:
            files = {key: tuple(value) for key, value in stored["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache yet, or one from another version: parse again
    return {"files": files, "used": set(), "dirty": False}


def _save_cache(root: Path) -> None:
    """Write the results of the files seen in this process (edited files' old ones dropped)."""
    cache = _cache(root)
    if not cache["dirty"]:
        return
    path = root / CACHE_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    kept = {key: cache["files"][key] for key in sorted(cache["used"])}
    try:  # several planning processes may write at once: each renames a whole file in place
        path.parent.mkdir(exist_ok=True)
        tmp.write_text(json.dumps({"python": _PYTHON, "files": kept}))
        os.replace(tmp, path)
        cache["dirty"] = False
    except OSError:  # a read-only install: parse again next time
        tmp.unlink(missing_ok=True)


def _parse(source: bytes, name: str, is_package: bool) -> Parsed:
    tree = ast.parse(source, name)
    modules: set[str] = set()
    maybe_modules: set[str] = set()

    def scan(body: list[ast.stmt]) -> list[ast.stmt]:
        """``body`` without its bare strings, its imports (nested ones too) noted on the way.

        Statements only, not expressions: imports and docstrings are statements, and skipping
        the expressions makes this several times faster than ``ast.walk``."""
        kept = []
        for node in body:
            if _is_docstring(node):
                continue
            kept.append(node)
            if isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if _in_package(a.name))
            elif isinstance(node, ast.ImportFrom):
                base = _import_base(name, is_package, node)
                if _in_package(base):
                    modules.add(base)
                    maybe_modules.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
            for block in ("body", "orelse", "finalbody"):
                statements = getattr(node, block, None)
                if isinstance(statements, list) and statements:
                    setattr(node, block, scan(statements) or [ast.Pass()])
            for part in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
                part.body = scan(part.body) or [ast.Pass()]
        return kept

    tree.body = scan(tree.body)
    # unparse, not dump: its text changes less between Python versions than dump's field lists
    text = ast.unparse(tree)
    return hashlib.sha256(text.encode()).hexdigest(), sorted(modules), sorted(maybe_modules)


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _import_base(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module ``from <base> import ...`` names, relative imports resolved against ``name``."""
    if not node.level:
        return node.module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _is_docstring(statement: ast.stmt) -> bool:
    """A bare string statement: a docstring, or an attribute's doc; it never changes a result."""
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))
