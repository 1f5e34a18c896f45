"""The GPU-hours estimate (cgankd estimate): FLOPs counted right, image passes read from the
config as the workflow expands it, and the CLI's table and one-line errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cgankd.cli import EXIT_BAD_INPUT, main
from cgankd.report import compute_estimate
from cgankd.report.compute_flops import forward_flops, net_flops
from cgankd.report.compute_sizes import LABEL, Sizes, resolve_config, split_sizes

REPO = Path(__file__).resolve().parents[1]


def test_forward_flops_of_a_linear_and_a_conv_layer_equal_the_hand_count():
    # 2 FLOPs per multiply-add: Linear 10 -> 20 is 10 x 20 MACs per row
    assert forward_flops(torch.nn.Linear(10, 20), torch.zeros(1, 10)) == 2 * 10 * 20
    # Conv 3 -> 8, 3x3, same padding on 5x5: every output pixel of every channel takes 3x3x3
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert forward_flops(conv, torch.zeros(1, 3, 5, 5)) == 2 * (8 * 5 * 5) * (3 * 3 * 3)


def test_a_registry_net_is_counted_on_the_meta_device_without_weights():
    sizes = Sizes(100, 10, 10, 3, 32, 10, "test")
    vgg = net_flops({"net": "vgg11", "kwargs": {}}, sizes)
    # VGG-11 at 32 px is ~0.15-0.3 GMACs in its CIFAR forms; a wrong input size or a
    # counter that misses convolutions lands far outside
    assert 2e8 < vgg < 8e8


def _tiny(tmp_path, **over):
    """The default config with one net, one seed, no fakes: every pass countable by hand."""
    text = {"experiment": "tiny",
            "teacher": {"recipe": {"steps": 10, "batch_size": 4, "eval_every": 5}},
            "students": {"methods": ["none", "kd"], "seeds": [0, 1],
                         "recipe": {"budget": "epochs", "epochs": 3, "batch_size": 64,
                                    "eval_every": 7}},
            "fake": {"enabled": False}, "convergence": {"enabled": True, "factor": 2},
            **over}
    base = yaml.safe_load(open("config/config.yaml"))
    for key, value in text.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    base["students"]["recipes"] = {}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def test_image_passes_of_a_tiny_config_equal_the_hand_computation(tmp_path, monkeypatch):
    # one FLOP per forward pass of any net: the FLOPs are then the weighted image passes
    monkeypatch.setattr(compute_estimate, "net_flops", lambda spec, sizes: 1)
    config = resolve_config([_tiny(tmp_path)])
    sizes = split_sizes(config)
    assert (sizes.train, sizes.val, sizes.test) == (500, 100, 1078)  # 50 / 10 per class
    stages = compute_estimate.estimate(config)["stages"]
    # teacher: 10 steps x 4 images x (forward + 2x backward), 2 validation passes, test once
    teacher = 10 * 4 * 3 + (10 // 5) * 100 + 1078
    assert stages["teachers"] == {"runs": 1, "flops": teacher}
    # students, budget epochs: ceil(3 x 500 / 64) = 24 steps of 64; KD adds a teacher forward
    steps = -(-3 * 500 // 64)
    scored = steps // 7 * 100 + 1078
    nokd, kd = steps * 64 * 3 + scored, steps * 64 * (3 + 1) + scored
    assert stages["students"] == {"runs": 4, "flops": 2 * (nokd + kd)}  # 2 seeds
    # convergence at 2x: the teacher's 20 steps, NOKD's 6 epochs, per seed
    steps2 = -(-6 * 500 // 64)
    conv = 20 * 4 * 3 + 4 * 100 + 1078 + 2 * (steps2 * 64 * 3 + steps2 // 7 * 100 + 1078)
    assert stages["convergence"] == {"runs": 3, "flops": conv}
    assert "cGAN" not in stages  # fakes off: no GAN, DRE, sampling or filtering


def test_student_runs_follow_the_variants_seeds_and_nets_the_workflow_expands():
    stages = compute_estimate.estimate(resolve_config([]))["stages"]
    # digits default: 1 net x (NOKD, KD, cGAN-KD, cGAN-KD + KD) x 5 seeds
    assert stages["students"]["runs"] == 1 * 4 * 5
    # CAS: the first net on each of the four ladder rungs' fakes alone, one seed
    assert stages["CAS"]["runs"] == 4 * 1


def test_cli_prints_the_labelled_table_for_the_default_and_a_published_config(tmp_path,
                                                                             capsys):
    assert main(["estimate"]) == 0
    out = capsys.readouterr().out
    assert LABEL in out and "| students |" in out and "total" in out
    out_json = tmp_path / "e.json"
    assert main(["estimate", "--configfile", "config/experiments/cifar10_v1_10k.yaml",
                 "--tflops", "100", "--utilisation", "0.5", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "cifar10_v1_10k" in out and LABEL in out and "| cGAN |" in out
    blob = json.loads(out_json.read_text())
    assert blob["label"] == LABEL and blob["assumptions"]["peak_tflops"] == 100
    total = blob["total"]
    assert total["gpu_hours"] == pytest.approx(total["flops"] / (100e12 * 0.5) / 3600)


@pytest.mark.parametrize("args, message", [
    (["--configfile", "no/such.yaml"], "no/such.yaml: config file not found"),
    (["--utilisation", "1.5"], "--utilisation must lie in (0, 1]"),
])
def test_cli_bad_input_is_one_line(args, message, capsys):
    assert main(["estimate", *args]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_unknown_experiment_key_is_one_line_naming_it(tmp_path, capsys):
    path = _tiny(tmp_path, bogus_section={"x": 1})
    assert main(["estimate", "--configfile", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "config key bogus_section: unknown key" in err and err.count("\n") == 1


def test_run_counts_equal_the_jobs_the_workflow_plans(tmp_path):
    """The estimate expands variants, seeds, nets, fake chains and rungs as rules/common.smk
    does: its run counts equal the jobs of a real dry run of a published file."""
    repo = Path(__file__).resolve().parents[1]
    config = "config/experiments/cifar10_v1_50k.yaml"
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(repo / "Snakefile"),
                          "-d", str(tmp_path / "work"), "--cores", "1", "--configfile",
                          str(repo / config)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    jobs = dict((name, int(count)) for name, count in
                re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE))
    stages = compute_estimate.estimate(resolve_config([repo / config]))["stages"]
    assert stages["students"]["runs"] == jobs["train_student"]
    assert stages["convergence"]["runs"] == jobs["train_convergence"]
    assert stages["subsample"]["runs"] == jobs["subsample"]
    assert stages["filter"]["runs"] == jobs["filter_relabel"]
    assert stages["CAS"]["runs"] == jobs["train_cas"]
    assert stages["quality"]["runs"] == jobs["train_metric_net"] + jobs["fake_quality"]


@pytest.mark.slow  # ~40 s: every experiment file's nets built and counted
def test_the_readmes_estimate_table_matches_the_experiment_files():
    """The README's "Estimated GPU-hours per run" rows are what `cgankd estimate` gives for
    each experiment file today: a config edit that changes a budget must regenerate them."""
    from cgankd.report.compute_sizes import DEFAULT_UTILISATION, H200_BF16_DENSE_TFLOPS

    readme = (REPO / "README.md").read_text()
    rows = {name: (hours, pflops) for name, hours, pflops in re.findall(
        r"^\| `([a-z0-9_]+)\.yaml` \| \d[^\n]*?\| \*\*([0-9.]+)\*\* \| [0-9,]+ \| ([0-9,]+) \|$",
        readme, flags=re.M)}
    files = sorted(p.stem for p in (REPO / "config" / "experiments").glob("*.yaml"))
    assert sorted(rows) == files
    for name in files:
        result = compute_estimate.estimate(
            resolve_config([REPO / "config" / "experiments" / f"{name}.yaml"]))
        flops = sum(row["flops"] for row in result["stages"].values())
        hours = compute_estimate.gpu_hours(flops, H200_BF16_DENSE_TFLOPS, DEFAULT_UTILISATION)
        assert f"{hours:.1f}" == rows[name][0], name
        assert f"{flops / 1e15:,.0f}" == rows[name][1], name
