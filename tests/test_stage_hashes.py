"""Stage source hashes follow the import graph: comments and docstrings rerun nothing, code
reruns exactly the stages that import it, and no stage runs a module its hash leaves out."""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cgankd.code_hash import PACKAGE_DIR, covered_modules
from cgankd.rerun_hash import LAUNCHED, STAGE_ENTRIES, stage_modules, stage_source_hash

REPO = PACKAGE_DIR.parent
CRD = "cgankd.kd.crd"


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the package to edit, and a function giving every stage's hash of that copy."""
    root = tmp_path / "cgankd"
    shutil.copytree(PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root, lambda: {stage: stage_source_hash(stage, root) for stage in STAGE_ENTRIES}


def test_copy_hashes_like_the_package(package_copy):
    root, hashes = package_copy
    assert hashes() == {stage: stage_source_hash(stage) for stage in STAGE_ENTRIES}
    # and again from the cache file the first call left in the copy
    assert (root / "__pycache__" / "cgankd-code-hash.json").is_file()
    assert hashes() == {stage: stage_source_hash(stage) for stage in STAGE_ENTRIES}


def test_comments_and_docstrings_change_no_hash(package_copy):
    root, hashes = package_copy
    before = hashes()
    crd = root / "kd" / "crd.py"
    source = crd.read_text()
    tree = ast.parse(source)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    lines = source.splitlines(keepends=True)
    # a comment line above a function (moves every later line), one at a line's end, an edited
    # module docstring and a docstring given to a function that had none or had another
    first = function.body[0]
    indent = " " * first.col_offset
    doc = f'{indent}"""A docstring added by the test."""\n'
    if ast.get_docstring(function) is not None:
        lines[first.lineno - 1:first.end_lineno] = [doc]
    else:
        lines.insert(first.lineno - 1, doc)
    lines.insert(function.lineno - 1, "# a comment added by the test\n")
    lines[-1] = lines[-1].rstrip("\n") + "  # and a trailing one\n"
    edited = "".join(lines)
    assert ast.get_docstring(tree) is not None
    edited = edited.replace(ast.get_docstring(tree).splitlines()[0], "Another module summary.", 1)
    assert edited != source
    crd.write_text(edited)
    assert hashes() == before


def test_code_change_reruns_the_stages_importing_it(package_copy):
    root, hashes = package_copy
    before = hashes()
    with (root / "kd" / "crd.py").open("a") as f:
        f.write("\nCHANGED_BY_TEST = 1\n")
    after = hashes()
    changed = {stage for stage in STAGE_ENTRIES if after[stage] != before[stage]}
    assert changed == {stage for stage in STAGE_ENTRIES if CRD in stage_modules(stage, root)}
    # The training rules share one entry (stages/_training.py, which imports the KD objective),
    # and importing any cgankd.kd module runs kd/__init__.py, which imports every loss: every
    # training rule (teacher and metric net included) reaches crd, as do evaluate (via
    # train.trainer -> kd.teacher_cache) and the fake stages. Data, GAN and report do not.
    assert {"train_teacher", "train_student", "train_metric_net"} <= changed
    assert not changed & {"prepare_data", "train_cgan", "aggregate"}


def test_the_gan_and_subsampling_do_not_rerun_for_an_edit_of_the_net_zoo():
    """The GAN (its ILI regressor) and subsample (the DRE extractor) build on the shared ResNet
    trunk in cgankd.blocks; a trunk kept under cgankd.nets would run nets/__init__.py, which
    registers every family, and an edit of vgg.py would rerun a long GAN run."""
    for stage in ("train_cgan", "subsample"):
        modules = stage_modules(stage)
        assert "cgankd.blocks.residual" in modules, stage
        assert not {m for m in modules if m.startswith("cgankd.nets")} - {
            "cgankd.stage_options.nets"}, stage


def test_relative_and_submodule_imports_followed(tmp_path):
    root = tmp_path / "cgankd"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from . import leaf\n")
    (root / "sub" / "leaf.py").write_text("from ..top import NAME\n")
    (root / "top.py").write_text("def f():\n    from cgankd import lazy\n")
    (root / "lazy.py").write_text("from cgankd.sub import leaf, NOT_A_MODULE\n")
    (root / "unused.py").write_text("")
    assert covered_modules(["cgankd.sub"], root) == {
        "cgankd", "cgankd.sub", "cgankd.sub.leaf", "cgankd.top", "cgankd.lazy"}
    with pytest.raises(ValueError, match="no module cgankd.missing"):
        covered_modules(["cgankd.missing"], root)


def _rule_blocks() -> dict[str, tuple[Path, str]]:
    """Rule name -> (its rules file, the text of its rule block)."""
    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^\s*rule ", smk.read_text(), flags=re.M)[1:]:
            blocks[block.split(":")[0]] = (smk, block)
    return blocks


def test_each_rule_hashes_its_own_stage_module_and_has_its_adapter():
    """One name per rule: cgankd/stages/<rule>.py, its hash, workflow_scripts/<rule>.py."""
    rules = _rule_blocks()
    assert set(rules) == set(STAGE_ENTRIES)
    for rule, (smk, block) in rules.items():
        assert re.findall(r'stage_source_hash\("(\w+)"\)', block) == [rule], rule
        scripts = re.findall(r'script:\s*\n\s*"([^"]+)"', block)
        assert [Path(s).name for s in scripts] == [f"{rule}.py"], rule
        assert STAGE_ENTRIES[rule][-1] == f"cgankd.stages.{rule}"
        # no rule runs another rule's module (shared code lives in stages/_<name>.py), so an
        # edit of one stage reruns that rule alone
        others = {m for m in stage_modules(rule) if m.startswith("cgankd.stages.")
                  and not m.startswith("cgankd.stages._")}
        assert others == {f"cgankd.stages.{rule}"}, rule


def _adapter_imports(script: Path) -> set[str]:
    """The cgankd modules an adapter imports (``from cgankd.stages import x``: the module x)."""
    tree = ast.parse(script.read_text())
    needed = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            needed.add(node.module)
            needed |= {f"{node.module}.{a.name}" for a in node.names
                       if (REPO / node.module.replace(".", "/") / f"{a.name}.py").is_file()}
    return {m for m in needed if m.startswith("cgankd")}


def _calls_run_stage(script: Path) -> bool:
    return any(isinstance(c, ast.Call) and getattr(c.func, "id", "") == "run_stage"
               for c in ast.walk(ast.parse(script.read_text())))


def test_every_adapter_import_is_in_its_stage_hash():
    """What a rule's adapter imports is hashed, and the launcher exactly where it launches."""
    for rule in STAGE_ENTRIES:
        script = REPO / "workflow_scripts" / f"{rule}.py"
        needed = _adapter_imports(script)
        assert f"cgankd.stages.{rule}" in needed, rule
        assert needed <= stage_modules(rule), (rule, needed - stage_modules(rule))
        assert _calls_run_stage(script) == (rule in LAUNCHED), rule


# What importing each stage's entries loads, printed by a fresh interpreter as one JSON object.
# Heavy libraries are imported once, then a forked child per stage imports that stage's entries
# (a fresh interpreter per stage would import torch seven times).
_PROBE = """
import importlib, json, os, sys
import h5py, numpy, torch
loaded = {}
for stage, entries in json.loads(sys.argv[1]).items():
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        for name in entries:
            importlib.import_module(name)
        names = sorted(m for m in sys.modules if m == "cgankd" or m.startswith("cgankd."))
        os.write(write, json.dumps(names).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        loaded[stage] = json.loads(f.read() or "null")
    os.wait()
print(json.dumps(loaded))
"""


@pytest.mark.slow
def test_no_stage_imports_a_module_outside_its_hash():
    """Importing each stage's entries (torch and all) loads only modules its hash covers."""
    probe = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(STAGE_ENTRIES)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout.splitlines()[-1])
    assert set(loaded) == set(STAGE_ENTRIES)
    for stage, names in loaded.items():
        assert names is not None, f"importing {stage}'s entries failed: {probe.stderr}"
        assert set(STAGE_ENTRIES[stage]) <= set(names)
        assert set(names) <= stage_modules(stage), (stage, set(names) - stage_modules(stage))


def test_unknown_stage_named():
    with pytest.raises(ValueError, match="unknown stage 'trian'.*known: aggregate, evaluate, "):
        stage_source_hash("trian")
    with pytest.raises(ValueError, match="unknown stage '_training'"):
        stage_source_hash("_training")  # shared by the training rules, not a rule
