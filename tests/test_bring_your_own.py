"""Bring your own: a net named by import path, and a teacher trained elsewhere
(``teacher.weights``), each checked with one line naming what does not fit."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cgankd.errors import CgankdInputError
from cgankd.stages.evaluate import run as evaluate_model
from cgankd.nets import build_net
from cgankd.stage_options.nets import check_net_spec, net_source_sha256
from cgankd.stages.import_teacher import run as import_teacher
from cgankd.train.model_file import load_model
from cgankd.stages._training import train_model
from toy_data import write_tiny_splits

REPO = Path(__file__).resolve().parents[1]

# A net written outside cgankd: no StagedNet, no registry; honours the forward contract.
USER_NETS = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self, num_outputs, in_channels, width=4):
            super().__init__()
            self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
            self.block1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
            self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
                                        nn.ReLU())
            self.head = nn.Linear(2 * width, num_outputs)

        def forward(self, x, return_features=False):
            maps = [self.stem(x)]
            maps.append(self.block1(maps[-1]))
            maps.append(self.block2(maps[-1]))
            embedding = maps[-1].mean((2, 3))
            out = self.head(embedding)
            return (out, maps + [embedding]) if return_features else out

    def tiny(num_outputs, in_channels, *, width=4):
        return Tiny(num_outputs, in_channels, width)

    class NoFeatures(nn.Module):
        def __init__(self, num_outputs, in_channels):
            super().__init__()
            self.head = nn.Linear(in_channels * 64, num_outputs)

        def forward(self, x):
            return self.head(x.flatten(1))

    def wide_head(num_outputs, in_channels):
        return Tiny(num_outputs + 1, in_channels)
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "userpkg"
    (folder / "mynets").mkdir(parents=True)
    (folder / "mynets" / "__init__.py").write_text("")
    (folder / "mynets" / "small.py").write_text(USER_NETS)
    monkeypatch.syspath_prepend(str(folder))
    return folder / "mynets" / "small.py"


def _splits(folder: Path, task: str = "classification", size: int = 8,
            label_max: float = 90.0) -> dict[str, Path]:
    return write_tiny_splits(folder, task, size, label_max, bar=True)


RECIPE = {"steps": 40, "batch_size": 16, "eval_every": 4, "crop_pad": 0, "flip": False}
TEACHER = {"net": "cnn", "kwargs": {"width": 8, "blocks": 2}}


def _teacher(tmp_path: Path, paths, net_cfg=TEACHER, name="teacher.pt") -> Path:
    out = tmp_path / name
    train_model(role="teacher", train=paths["train"], val=paths["val"], model=out,
                history=tmp_path / f"{name}.jsonl", net=net_cfg, recipe=RECIPE, seed=0,
                progress=False)
    return out


# ------------------------------------------------------------------- nets by import path

def test_plan_time_check_finds_the_module_without_importing_it(user_module):
    check_net_spec({"net": "mynets.small:tiny", "kwargs": {"width": 3}}, "students.nets.mine")
    assert "mynets.small" not in sys.modules  # found on sys.path, not run
    with pytest.raises(CgankdInputError, match=r"^teacher\.net: cannot find module "
                                               r"'mynets\.absent'"):
        check_net_spec({"net": "mynets.absent:tiny"}, "teacher")
    with pytest.raises(CgankdInputError, match=r"^teacher\.net: 'mynets\.small:' is neither"):
        check_net_spec({"net": "mynets.small:"}, "teacher")


def test_editing_the_module_changes_its_source_hash(user_module):
    before = net_source_sha256("mynets.small:tiny", "net")
    assert net_source_sha256("cnn", "net") is None  # the stage hash covers zoo nets
    user_module.write_text(USER_NETS + "\n# a new line\n")
    assert net_source_sha256("mynets.small:tiny", "net") != before


def test_user_net_trains_distils_and_reloads_from_its_model_file(tmp_path, user_module):
    paths = _splits(tmp_path)
    teacher = _teacher(tmp_path, paths)
    spec = {"net": "mynets.small:tiny", "kwargs": {"width": 3}, "source_sha256": "abc"}
    train_model(role="student", train=paths["train"], val=paths["val"],
                model=tmp_path / "s.pt", history=tmp_path / "s.jsonl", net=spec,
                recipe=RECIPE, seed=0, kd_method="at", teacher=teacher, progress=False)
    net, meta = load_model(tmp_path / "s.pt")
    assert type(net).__name__ == "Tiny" and net.stem.out_channels == 3
    assert meta["net"] == "mynets.small:tiny" and meta["net_source_sha256"] == "abc"
    out = net(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 3)


@pytest.mark.parametrize("factory, message", [
    ("mynets.small:NoFeatures", r"forward must take return_features=True"),
    ("mynets.small:wide_head", r"output must be \(N, 3\) for 3 output\(s\); got \(2, 4\)"),
    ("mynets.small:missing", r"module 'mynets\.small' has no callable 'missing'"),
])
def test_a_net_breaking_the_contract_fails_before_training(tmp_path, user_module, factory,
                                                           message):
    paths = _splits(tmp_path)
    with pytest.raises(CgankdInputError, match=message):
        train_model(role="student", train=paths["train"], val=paths["val"],
                    model=tmp_path / "s.pt", history=tmp_path / "s.jsonl",
                    net={"net": factory}, recipe=RECIPE, seed=0, progress=False)
    assert not (tmp_path / "s.pt").exists()


def test_factory_keyword_errors_say_how_it_was_called(user_module):
    with pytest.raises(CgankdInputError, match=r"factory\(num_outputs=3, in_channels=1, "
                                               r"\*\*\{'depth': 2\}\) failed"):
        build_net("mynets.small:tiny", 3, 1, depth=2)


# ------------------------------------------------------------------------ given teacher

def test_model_file_and_wrapped_state_dict_import_to_the_same_teacher(tmp_path):
    paths = _splits(tmp_path)
    trained = _teacher(tmp_path, paths)
    net, _ = load_model(trained)
    # a zoo checkpoint: {"model": state_dict} saved from DataParallel ("module." prefixes)
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()},
                "epoch": torch.tensor(240)}, tmp_path / "zoo.pth")
    results = {}
    for name, weights in (("file", trained), ("zoo", tmp_path / "zoo.pth")):
        out = tmp_path / name / "model.pt"
        results[name] = import_teacher(weights=weights, train=paths["train"],
                                       val=paths["val"], model=out,
                                       history=tmp_path / name / "history.jsonl",
                                       net=TEACHER, device="cpu")
        metrics = evaluate_model(out, paths["val"], tmp_path / name / "val.json", device="cpu")
        assert metrics["budget"] == "given" and metrics["role"] == "teacher"
        results[name]["accuracy"] = metrics["accuracy"]
    assert results["file"]["kind"] == "cgankd model file"
    assert results["zoo"]["kind"] == "state dict"
    assert results["file"]["accuracy"] == results["zoo"]["accuracy"]
    assert results["file"]["val"]["accuracy"] == pytest.approx(results["file"]["accuracy"])
    assert results["file"]["accuracy"] > 60  # a trained teacher (chance: 33 %) came through
    imported, meta = load_model(tmp_path / "zoo" / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(imported.state_dict().values(),
                                                 net.state_dict().values()))
    assert meta["weights"]["path"] == str(tmp_path / "zoo.pth")
    line = json.loads((tmp_path / "zoo" / "history.jsonl").read_text())
    assert line["imported"]["kind"] == "state dict"


def _import(tmp_path, paths, weights, net_cfg=TEACHER):
    return import_teacher(weights=weights, train=paths["train"], val=paths["val"],
                          model=tmp_path / "out.pt", history=tmp_path / "out.jsonl",
                          net=net_cfg, device="cpu")


def test_mismatches_fail_with_one_line_and_write_nothing(tmp_path):
    paths = _splits(tmp_path)
    trained = _teacher(tmp_path, paths)
    with pytest.raises(CgankdInputError, match=r"holds net cnn \{'width': 8, 'blocks': 2\}, "
                                               r"the config's teacher is cnn \{'width': 4"):
        _import(tmp_path, paths, trained, {"net": "cnn", "kwargs": {"width": 4, "blocks": 2}})
    (tmp_path / "big").mkdir()
    other_size = _splits(tmp_path / "big", size=16)
    with pytest.raises(CgankdInputError, match=r"resolution 8, where this experiment's data "
                                               r"has 16$"):
        _import(tmp_path, other_size, trained)
    torch.save(build_net("cnn", 3, 1, width=4, blocks=2).state_dict(), tmp_path / "narrow.pth")
    with pytest.raises(CgankdInputError, match=r"does not fit net cnn for this data: shape "
                                               r"\(file vs net\): stem\.0\.0\.weight \(4, 1, 3, "
                                               r"3\) vs \(8, 1, 3, 3\), .* \(\+18 more\)$"):
        _import(tmp_path, paths, tmp_path / "narrow.pth")
    torch.save({"epoch": 3}, tmp_path / "junk.pth")
    with pytest.raises(CgankdInputError, match=r"neither a cgankd model file nor a state dict"):
        _import(tmp_path, paths, tmp_path / "junk.pth")
    assert not (tmp_path / "out.pt").exists()


def test_regression_teacher_must_share_the_label_range(tmp_path):
    paths = _splits(tmp_path, "regression")
    trained = _teacher(tmp_path, paths)
    (tmp_path / "wide").mkdir()
    wider = _splits(tmp_path / "wide", "regression", label_max=180.0)
    with pytest.raises(CgankdInputError, match=r"label range \(0\.0, 90\.0\), where this "
                                               r"experiment's data has \(0\.0, 180\.0\)$"):
        _import(tmp_path, wider, trained)
    assert "mae" in _import(tmp_path, paths, trained)["val"]


def test_the_workflow_imports_instead_of_training_and_drops_its_convergence_run(tmp_path):
    weights = tmp_path / "teacher.pt"
    weights.write_bytes(b"checked when the job runs")
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config",
         f"teacher={{'weights': '{weights}', 'net': 'cnn', 'kwargs': {{'width': 32, "
         f"'blocks': 3}}}}", "experiment=byo"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "import_teacher" in dry.stdout and "train_teacher" not in dry.stdout
    assert "convergence/teacher" not in dry.stdout and "convergence/cnn2" in dry.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config",
         f"teacher={{'weights': '{tmp_path / 'absent.pt'}'}}", "experiment=byo"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0
    assert (f"config: teacher.weights: file not found: {tmp_path / 'absent.pt'}"
            in missing.stdout + missing.stderr)


def test_adapter_runs_the_import_as_the_rule_calls_it(tmp_path):
    from test_launch import _Output, run_adapter
    paths = _splits(tmp_path)
    trained = _teacher(tmp_path, paths)
    out = {"model": str(tmp_path / "rule" / "model.pt"),
           "history": str(tmp_path / "rule" / "history.jsonl")}
    run_adapter("import_teacher.py", log=[str(tmp_path / "logs" / "import_teacher.log")],
                input=_Output(weights=str(trained), train=str(paths["train"]),
                              val=str(paths["val"])),
                output=_Output(out),
                params=_Output(net=TEACHER, device="cpu", source_hash="h"))
    _, meta = load_model(out["model"])
    assert meta["source_hash"] == "h" and meta["weights"]["kind"] == "cgankd model file"
