"""Config files with a ``base:``: the deep merge, chains, the one-line errors, the workflow's
--configfile/--config and the study runner reading them the same way."""

import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from cgankd.config_files import (configfiles_config, deep_merge, load_config_file,
                                 partial_config_warning)
from cgankd.errors import CgankdInputError


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_deep_merge_merges_mappings_and_replaces_lists_and_scalars():
    base = {"a": 1, "m": {"x": 1, "y": {"p": 1, "q": 2}, "l": [1, 2, 3]}, "s": {"k": 1},
            "gone": {"k": 1}}
    over = {"m": {"y": {"q": 20}, "l": [9], "z": None}, "s": 5, "new": {"k": [1]},
            "gone": None, "a": {"now": "a mapping"}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"now": "a mapping"},
                      "m": {"x": 1, "y": {"p": 1, "q": 20}, "l": [9], "z": None},
                      "s": 5, "gone": None, "new": {"k": [1]}}
    assert list(merged) == ["a", "m", "s", "gone", "new"]  # the base's order, new keys after
    assert base["m"]["y"] == {"p": 1, "q": 2} and base["m"]["l"] == [1, 2, 3]  # not modified
    merged["new"]["k"].append(2)
    assert over["new"]["k"] == [1]  # the result shares nothing with its inputs


def test_snakemake_merges_configfiles_the_same_way():
    """Snakemake's own --configfile merge: a file means the same whichever way it is read."""
    from snakemake.utils import update_config

    base = {"m": {"x": 1, "l": [1, 2]}, "s": {"k": 1}, "t": 1}
    over = {"m": {"l": [3]}, "s": 2, "t": {"k": 2}}
    snakemake_merged = yaml.safe_load(yaml.safe_dump(base))
    update_config(snakemake_merged, over)
    assert deep_merge(base, over) == snakemake_merged


def test_a_chain_of_two_bases_resolves_relative_to_each_naming_file(tmp_path):
    _write(tmp_path / "root.yaml", "experiment: root\nteacher: {seed: 0, recipe: {lr: 0.1}}\n"
                                   "students: {seeds: [0, 1, 2]}\n")
    _write(tmp_path / "bases" / "mid.yaml",
           "base: ../root.yaml\nteacher: {recipe: {lr: 0.05, steps: 10}}\n")
    overlay = _write(tmp_path / "exp" / "top.yaml",
                     "base: ../bases/mid.yaml\nexperiment: top\nstudents: {seeds: [7]}\n")
    assert load_config_file(overlay) == {
        "experiment": "top", "teacher": {"seed": 0, "recipe": {"lr": 0.05, "steps": 10}},
        "students": {"seeds": [7]}}
    absolute = _write(tmp_path / "abs.yaml", f"base: {tmp_path / 'root.yaml'}\n")
    assert load_config_file(absolute)["experiment"] == "root"


def test_a_file_without_base_loads_as_it_is(tmp_path):
    path = _write(tmp_path / "plain.yaml", "experiment: plain\ndata: {dataset: digits}\n")
    assert load_config_file(path) == yaml.safe_load(path.read_text())
    assert load_config_file(_write(tmp_path / "empty.yaml", "")) == {}


def test_a_cycle_is_one_line_naming_the_file_and_the_key(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\nexperiment: a\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(CgankdInputError) as caught:
        load_config_file(tmp_path / "a.yaml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'b.yaml'}: base: a.yaml makes a cycle")
    assert f"{tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}" in message
    _write(tmp_path / "self.yaml", "base: ./self.yaml\n")
    with pytest.raises(CgankdInputError, match="self.yaml: base: ./self.yaml makes a cycle"):
        load_config_file(tmp_path / "self.yaml")


def test_a_missing_base_names_the_file_that_names_it_and_the_missing_path(tmp_path):
    overlay = _write(tmp_path / "exp.yaml", "base: nowhere/base.yaml\nexperiment: x\n")
    with pytest.raises(CgankdInputError) as caught:
        load_config_file(overlay)
    assert str(caught.value) == (f"{overlay}: base: {tmp_path / 'nowhere' / 'base.yaml'}: "
                                 f"cannot read the config file (no such file)")
    with pytest.raises(CgankdInputError, match="missing.yaml: cannot read the config file"):
        load_config_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text, message", [
    ("base: 3\n", "base: must be the path of a config file (a string), got 3"),
    ("base: [a.yaml]\n", "base: must be the path of a config file (a string), got ['a.yaml']"),
    ("base:\n", "base: must be the path of a config file (a string), got None"),
    ("base: list.yaml\n", "base: {dir}/list.yaml: the config file must hold a mapping of keys, "
                          "got list"),
    ("base: bad.yaml\n", "base: {dir}/bad.yaml: not valid YAML"),
])
def test_a_bad_base_is_one_line_naming_the_file(tmp_path, text, message):
    _write(tmp_path / "list.yaml", "- a\n- b\n")
    _write(tmp_path / "bad.yaml", "a: [1,\n")
    overlay = _write(tmp_path / "exp.yaml", text)
    with pytest.raises(CgankdInputError) as caught:
        load_config_file(overlay)
    assert str(caught.value).startswith(f"{overlay}: {message.format(dir=tmp_path)}")
    assert "\n" not in str(caught.value)


def test_configfiles_merge_in_order_with_the_command_line_on_top(tmp_path):
    _write(tmp_path / "base.yaml", "experiment: b\nteacher: {seed: 0, net: cnn}\n")
    first = _write(tmp_path / "first.yaml", "base: base.yaml\nteacher: {seed: 1}\n")
    second = _write(tmp_path / "second.yaml", "teacher: {net: mlp}\ndevice: cpu\n")
    plain = _write(tmp_path / "plain.yaml", "experiment: p\n")
    assert configfiles_config([plain], {"experiment": "x"}) is None  # Snakemake's is right
    assert configfiles_config([first, second], {"experiment": "x", "device": "cuda"}) == {
        "experiment": "x", "teacher": {"seed": 1, "net": "mlp"}, "device": "cuda"}


def test_snakemake_plans_an_overlay_with_the_command_line_on_top(tmp_path):
    """One real dry run: the base's nets, the overlay's seeds, --config's experiment name."""
    overlay = _write(tmp_path / "overlay.yaml",
                     f"base: {REPO / 'config' / 'config.yaml'}\nexperiment: overlaid\n"
                     f"students: {{seeds: [7]}}\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"),
                          "-d", str(tmp_path / "work"), "--cores", "1",
                          "--configfile", str(overlay), "--config", "experiment=x"],
                         capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    nets = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["students"]["nets"]
    net = next(iter(nets))
    assert f"results/x/students/{net}/real/none/seed7/model.pt" in output
    assert "results/overlaid/" not in output
    assert "cgankd: warning" not in output  # the base sets every core section
    assert f"results/x/students/{net}/real/none/seed1/model.pt" not in output


def test_a_config_without_a_core_section_warns_naming_the_files_and_sections():
    full = {"experiment": "e", "data": {}, "teacher": {}, "students": {}}
    assert partial_config_warning(["full.yaml"], full) is None
    assert partial_config_warning([], {"experiment": "e"}) is None  # no --configfile
    line = partial_config_warning(["a.yaml", "b.yaml"], {"experiment": "e", "teacher": {}})
    assert "\n" not in line
    assert "--configfile a.yaml, b.yaml sets no data, students:" in line
    assert "base:" in line


def test_snakemake_warns_at_plan_time_about_an_overlay_without_base(tmp_path):
    """The mistake the warning is for: a few keys of config.yaml given without `base:`."""
    overlay = _write(tmp_path / "overlay.yaml", "experiment: x\nstudents: {seeds: [7]}\n")
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"),
                          "-d", str(tmp_path / "work"), "--cores", "1",
                          "--configfile", str(overlay)],
                         capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert f"cgankd: warning: --configfile {overlay} sets no data, teacher:" in output


def test_the_study_runner_reads_the_experiment_through_its_bases(tmp_path):
    from cgankd.study.runner import prepare

    overlay = _write(tmp_path / "exp.yaml", f"base: {REPO / 'config' / 'config.yaml'}\n"
                                            f"experiment: overlaid\nfilter: {{seed: 3}}\n")
    study = _write(tmp_path / "study.yaml",
                   "factors: {rho: {key: filter.options.rho, levels: [0.95]}}\n")
    run = prepare(study, overlay, tmp_path)
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert run.prefix.startswith("overlaid-")
    assert run.base.config["filter"]["seed"] == 3
    assert run.base.config["teacher"]["net"] == default["teacher"]["net"]
    assert "base" not in run.base.config
