"""Data-parallel training: batch shares, the launcher's choices, and torchrun runs on CPU (gloo)
against one process."""

import copy
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from ddp_fit_worker import train_tiny

from cgankd import launch
from cgankd.distributed import World
from cgankd.errors import CgankdInputError
from cgankd.gan.models import build_generator
from cgankd.gan.diffaug import diff_augment
from cgankd.gan.trainer import Trainer
from cgankd.stages import train_cgan, train_student, train_teacher
from cgankd.stages.train_cgan import _check_world
from cgankd.train.model_file import load_model
from toy_data import write_tiny_splits, write_toy_split

TESTS = Path(__file__).resolve().parent


def test_shares_partition_every_global_batch():
    for n in (3, 15, 16):
        for size in (1, 2, 3):
            rows = [r for rank in range(size)
                    for r in range(n)[World(rank, size).share(n)]]
            assert rows == list(range(n))


def test_one_process_without_several_usable_gpus(monkeypatch):
    assert launch.processes_for(4, "auto") == (1 if not torch.cuda.is_available() else
                                               min(4, torch.cuda.device_count()))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert launch.processes_for(1) == 1
    assert launch.processes_for(None) == 1
    assert launch.processes_for(2, "cpu") == 1  # device: cpu never starts torchrun
    assert launch.processes_for(4, "cuda:1") == 2  # as many as are visible
    with pytest.raises(CgankdInputError, match="resources.gpu"):
        launch.processes_for("two")


def test_one_gpu_runs_the_stage_in_this_process(monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "launch", lambda *a, **k: pytest.fail("torchrun started"))
    launch.run_stage(lambda **kw: calls.append(kw), {"seed": 3, "device": "auto"}, gpus=1)
    assert calls == [{"seed": 3, "device": "auto"}]


def test_torchrun_command_and_what_a_worker_may_run():
    command = launch.torchrun_command(4, Path("spec.json"))
    assert command[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
                           "-m", "cgankd.launch", "spec.json"]
    assert launch.stage_name(train_student.run) == "cgankd.stages.train_student:run"
    assert launch.stage_function("cgankd.stages.train_student:run") is train_student.run
    # A worker imports what the spec file names: functions of cgankd.stages.* only, and a
    # function the launcher could not send fails before torchrun starts.
    for name in ("os:system", "cgankd.launch:main", "cgankd.stages:x", "cgankd.stages.evaluate"):
        with pytest.raises(CgankdInputError, match=r"^the launcher runs functions of "
                                                   r"cgankd\.stages\.\* only"):
            launch.stage_function(name)
    with pytest.raises(CgankdInputError, match="found no function 'cgankd.stages.evaluate:nope'"):
        launch.stage_function("cgankd.stages.evaluate:nope")
    with pytest.raises(CgankdInputError, match=r"stages\.\* only .*'builtins:len'"):
        launch.launch(len, {}, 2)
    with pytest.raises(CgankdInputError, match="only.*<locals>"):
        launch.launch(lambda: None, {}, 2)


def test_sync_batchnorm_keeps_the_state_dict_layout_the_ema_copy_relies_on():
    # On CUDA the trained G gets SyncBatchNorm while its EMA copy keeps plain BatchNorm;
    # ema_update pairs their state dicts by position. Conversion itself needs no GPU.
    common = {"resolution": 8, "channels": 1, "condition": "class", "num_classes": 3,
              "dim_cond": 0, "attention_res": None}
    plain = build_generator("biggan", **common, dim_z=8, ch=2, mults=None, dim_shared=8,
                            hier=True)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    assert list(synced.state_dict()) == list(plain.state_dict())


@pytest.mark.parametrize("copies", [1, 2])  # G step: fakes; D step: reals then fakes
def test_each_rank_augments_its_share_as_one_process_augments_those_images(copies):
    n, policy = 6, "color,translation,cutout"
    images = torch.randn(copies * n, 3, 8, 8)
    whole = diff_augment(images, policy, torch.Generator().manual_seed(4))
    for rank in range(2):
        world = World(rank, 2)
        share = world.share(n)
        rows = torch.cat([torch.arange(share.start, share.stop) + k * n for k in range(copies)])
        trainer = SimpleNamespace(world=world, opts={"diffaug": policy},
                                  rng=torch.Generator().manual_seed(4), device=torch.device("cpu"))
        mine = Trainer._augment(trainer, images[rows], share, n)
        torch.testing.assert_close(mine, whole[rows], rtol=0, atol=0)


def test_gan_batch_must_split_evenly_over_the_ranks():
    _check_world({"batch_size": 64}, World(0, 4))
    with pytest.raises(CgankdInputError, match="gan.batch_size 64 must be divisible by the 3"):
        _check_world({"batch_size": 64}, World(1, 3))


# --- real torchrun runs: 2 CPU processes with gloo ------------------------------------------

def test_two_processes_train_the_same_weights_as_one(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", str(TESTS / "ddp_fit_worker.py"), str(out)],
                   check=True, capture_output=True, timeout=120)
    single = train_tiny(tmp_path)  # the same global batches in one process
    parallel = torch.load(out / "weights.pt", weights_only=True)
    for key, value in single.items():
        torch.testing.assert_close(parallel[key], value, rtol=0, atol=1e-5)
    # Only rank 0 wrote: the history, the mid-run checkpoints (removed at the end), the weights.
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.rank0", "history.jsonl", "history.rank0", "weights.pt"]
    ddp_log, one_log = ((d / "history.jsonl").read_text().splitlines() for d in (out, tmp_path))
    assert len(ddp_log) == len(one_log) == 1
    assert json.loads(ddp_log[0])["train"]["total"] == \
        pytest.approx(json.loads(one_log[0])["train"]["total"], abs=1e-5)


@pytest.mark.slow
def test_launcher_trains_a_model_on_two_processes_and_rank_0_writes_it(tmp_path):
    paths = write_tiny_splits(tmp_path, "classification")
    out = tmp_path / "model"
    result = launch.launch(train_teacher.run, {
        "train": paths["train"], "val": paths["val"],
        "model": out / "model.pt", "history": out / "history.jsonl",
        "net": {"net": "cnn", "kwargs": {"width": 4, "blocks": 2}},
        "recipe": {"steps": 4, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2,
                   "crop_pad": 0, "flip": False},
        "seed": 0, "device": "cpu", "progress": False}, 2)
    assert result["best_step"] in (2, 4)
    _, meta = load_model(out / "model.pt")
    assert meta["accel"] == {"amp": "fp32", "channels_last": False, "compile": False,
                             "processes": 2}
    assert sorted(p.name for p in out.iterdir()) == ["history.jsonl", "model.pt"]


@pytest.mark.slow
def test_a_worker_input_error_comes_back_as_the_same_one_line_error(tmp_path):
    paths = write_tiny_splits(tmp_path, "classification")
    with pytest.raises(CgankdInputError, match="KD method 'crd' trains on one GPU only"):
        launch.launch(train_student.run, {
            "train": paths["train"], "val": paths["val"],
            "model": tmp_path / "s.pt", "history": tmp_path / "s.jsonl",
            "net": {"net": "cnn"}, "recipe": {}, "seed": 0, "device": "cpu",
            "kd_method": "crd", "teacher": tmp_path / "t.pt", "progress": False}, 2)
    assert not (tmp_path / "s.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_launcher_trains_the_gan_on_two_processes(tmp_path, task):
    options = {"g_ch": 2, "d_ch": 2, "dim_z": 8, "dim_shared": 8, "batch_size": 8, "n_dis": 2,
               "ema_start": 1, "checkpoint_every": 2, "sample_every": 2, "iterations": 3}
    if task == "regression":  # CcGAN with soft vicinal weights, ILI broadcast from rank 0
        options.update({"label_input": "ili", "vicinity": "soft", "ili_width": 0.125,
                        "ili_blocks": [1, 1, 1, 1], "ili_regressor_epochs": 1,
                        "ili_y2h_epochs": 1})
    write_toy_split(tmp_path / "train.h5", 24, task)
    summary = launch.launch(train_cgan.run, {"train": tmp_path / "train.h5",
                                             "options": options, "out_dir": tmp_path / "gan",
                                             "device": "cpu", "seed": 0, "progress": False}, 2)
    assert summary["accel"]["processes"] == 2 and summary["iterations"] == 3
    log = (tmp_path / "gan" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in log] == [1, 2, 3]  # one writer
    blob = torch.load(tmp_path / "gan" / "generator.pt", weights_only=True)
    assert blob["iterations"] == 3 and blob["task"] == task
    assert (tmp_path / "gan" / "samples" / "iter_000002.png").is_file()
