"""Resume never stale, logs never lost, interrupts leave a checkpoint (cgankd/train/resume.py)."""

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cgankd.stages import _training as stages
from cgankd.train.model_file import load_model
from cgankd.train.resume import Resume, key_parts, load_checkpoint
from cgankd.train.trainer import fit
from conftest import Killed, kill_after
from toy_data import toy_split, write_bar_splits, write_toy_split

REPO = Path(__file__).resolve().parents[1]
RECIPE = {"steps": 12, "batch_size": 16, "eval_every": 2, "checkpoint_every": 4, "crop_pad": 0,
          "flip": False, "lr": 0.05}
NET = {"net": "cnn", "kwargs": {"width": 4, "blocks": 2}}


@pytest.fixture
def splits(tmp_path):
    return {"train": write_toy_split(tmp_path / "train.h5", 48, seed=0),
            "val": write_toy_split(tmp_path / "val.h5", 24, seed=1),
            "fakes": write_toy_split(tmp_path / "fakes.h5", 24, seed=2)}


def _student(splits, out: Path, recipe=RECIPE, **kwargs):
    return stages.train_model(role="student", train=splits["train"], val=splits["val"],
                              model=out / "model.pt", history=out / "history.jsonl",
                              net=NET, recipe=recipe, seed=0, progress=False,
                              fakes=[splits["fakes"]], **kwargs)


def _killed_at(monkeypatch, step: int) -> None:
    """The next train_model raises at ``step``, as a kill would stop it."""
    def on_step(done):
        if done == step:
            raise Killed
    monkeypatch.setattr(stages, "fit", functools.partial(fit, on_step=on_step))


def _records(path: Path, wall_time: str) -> list[dict]:
    """A JSON-lines log without its wall-time field."""
    return [{k: v for k, v in json.loads(line).items() if k != wall_time}
            for line in path.read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def test_key_hashes_file_contents_not_paths(tmp_path, splits):
    before = key_parts({"a": 1}, {"train": splits["train"], "fakes": [splits["fakes"]]})
    assert before == key_parts({"a": 1}, {"train": splits["train"], "fakes": [splits["fakes"]]})
    write_toy_split(splits["fakes"], 24, seed=3)  # same path, other content
    after = key_parts({"a": 1}, {"train": splits["train"], "fakes": [splits["fakes"]]})
    assert after["inputs"]["train"] == before["inputs"]["train"]
    assert after["inputs"]["fakes"] != before["inputs"]["fakes"]


def test_student_starts_over_when_a_fake_set_changed(tmp_path, splits, monkeypatch, capsys):
    out = tmp_path / "run"
    _killed_at(monkeypatch, 6)
    with pytest.raises(Killed):
        _student(splits, out)
    assert load_checkpoint(out / "model.resume.pt")["step"] == 4
    monkeypatch.undo()
    write_toy_split(splits["fakes"], 24, seed=3)  # filter_relabel rewrote the fakes
    capsys.readouterr()
    _student(splits, out)
    captured = capsys.readouterr()
    err, printed = captured.err, captured.out
    lines = [line for line in err.splitlines() if "training from scratch" in line]
    assert len(lines) == 1 and "other input files (fakes)" in lines[0], err
    assert "resuming" not in printed
    # Started over: the model equals a run that only ever saw the new fakes.
    _student(splits, tmp_path / "fresh")
    for key, value in _weights(tmp_path / "fresh" / "model.pt").items():
        assert torch.equal(value, _weights(out / "model.pt")[key]), key


def test_kd_student_starts_over_when_its_teacher_was_retrained(tmp_path, splits, monkeypatch,
                                                               capsys):
    def teacher(seed):
        stages.train_model(role="teacher", train=splits["train"], val=splits["val"],
                           model=tmp_path / "teacher.pt", history=tmp_path / "t.jsonl",
                           net=NET, recipe={**RECIPE, "steps": 4}, seed=seed,
                           progress=False)
    teacher(0)
    kd = dict(kd_method="kd", teacher=tmp_path / "teacher.pt")
    _killed_at(monkeypatch, 6)
    with pytest.raises(Killed):
        _student(splits, tmp_path / "run", **kd)
    monkeypatch.undo()
    teacher(1)  # train_teacher reran: another teacher under the same path
    capsys.readouterr()
    _student(splits, tmp_path / "run", **kd)
    assert "other input files (teacher)" in capsys.readouterr().err


def test_student_log_rewritten_in_full_on_resume(tmp_path, splits, monkeypatch):
    _student(splits, tmp_path / "whole")
    out = tmp_path / "run"
    _killed_at(monkeypatch, 10)
    with pytest.raises(Killed):
        _student(splits, out)
    monkeypatch.undo()
    (out / "history.jsonl").unlink()  # Snakemake deletes a job's outputs before rerunning it
    _student(splits, out)
    assert _records(out / "history.jsonl", "seconds") == \
        _records(tmp_path / "whole" / "history.jsonl", "seconds")
    for key, value in _weights(tmp_path / "whole" / "model.pt").items():
        assert torch.equal(value, _weights(out / "model.pt")[key]), key


def test_time_interval_checkpoints_a_run_shorter_than_checkpoint_every(tmp_path, splits,
                                                                         monkeypatch):
    _killed_at(monkeypatch, 3)
    # 12 steps never reach checkpoint_every; a tiny interval checkpoints after every step.
    with pytest.raises(Killed):
        _student(splits, tmp_path, recipe={**RECIPE, "checkpoint_every": 1000,
                                           "checkpoint_seconds": 1e-9})
    assert load_checkpoint(tmp_path / "model.resume.pt")["step"] == 3


def test_checkpoint_seconds_is_an_option():
    from cgankd.errors import CgankdInputError
    from cgankd.train.recipe import checked_recipe
    assert checked_recipe({}, "r")["checkpoint_seconds"] > 0
    with pytest.raises(CgankdInputError, match="r.checkpoint_seconds"):
        checked_recipe({"checkpoint_seconds": 0}, "r")


def test_resume_refuses_a_checkpoint_of_other_precision(tmp_path, capsys):
    parts = key_parts({"x": 1}, {})
    Resume(tmp_path / "c.pt", parts, desc="t", every=1, seconds=None,
           match={"amp": ("bf16", "fp32")}).save({"step": 1}, [])
    resume = Resume(tmp_path / "c.pt", parts, desc="t", every=1, seconds=None,
                    match={"amp": ("fp32", "fp32")})
    assert resume.load() is None
    assert "amp 'bf16'" in capsys.readouterr().err


# A child process: the tiny student of this module, slowed so a signal lands mid-run.
CHILD = """
import functools, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import test_resume as t
from cgankd.stages import _training as stages
slow = float(sys.argv[2])
stages.fit = functools.partial(stages.fit, on_step=lambda s: time.sleep(slow))
splits = {{k: Path(sys.argv[1]) / f"{{k}}.h5" for k in ("train", "val", "fakes")}}
t._student(splits, Path(sys.argv[1]) / "run", recipe={{**t.RECIPE, "steps": 40}})
"""


@pytest.mark.slow  # two Python processes that import torch: ~10-20 s on 2 busy cores
def test_sigint_stops_at_a_step_boundary_with_a_checkpoint(tmp_path, splits):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(REPO / "tests")))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path), "0.2"], env=env,
                             stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "history.jsonl"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first logged step (eval_every 2)
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=60)[1]
    assert child.returncode == 128 + signal.SIGINT, err
    step = load_checkpoint(tmp_path / "run" / "model.resume.pt")["step"]
    assert 2 <= step < 40
    assert f"stopped by SIGINT after step {step}" in err and "Traceback" not in err
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"resuming from step {step}" in done.stdout, done.stderr
    _student(splits, tmp_path / "whole", recipe={**RECIPE, "steps": 40})
    for key, value in _weights(tmp_path / "whole" / "model.pt").items():
        assert torch.equal(value, _weights(tmp_path / "run" / "model.pt")[key]), key
    assert _records(log, "seconds") == _records(tmp_path / "whole" / "history.jsonl", "seconds")


# --- the GAN loop -----------------------------------------------------------------------------

def _gan(split, out: Path, **kwargs):
    from cgankd.stages.train_cgan import train_cgan
    from test_gan import TINY
    return train_cgan(split, {**TINY, "iterations": 10}, out, seed=5, progress=False, **kwargs)


def _gan_killed_at(split, out: Path, iteration: int) -> None:
    def kill(it, record):
        if it == iteration:
            raise Killed
    with pytest.raises(Killed):
        _gan(split, out, on_iteration=kill)


def _same_generator(a: Path, b: Path) -> None:
    whole = torch.load(a / "generator.pt", weights_only=True)["state_dict"]
    other = torch.load(b / "generator.pt", weights_only=True)["state_dict"]
    for key, value in whole.items():
        assert torch.equal(value, other[key]), key


def test_the_gans_data_fingerprint_ignores_which_code_wrote_the_split():
    """A GAN checkpoint resumes after an edit of prepare_data that writes the same data (only
    the split's source hash and format tag move), and not after a change of the data."""
    import dataclasses

    import numpy as np

    from cgankd.gan.loop import data_fingerprint
    from cgankd.h5io import Split

    split = Split(images=np.zeros((4, 1, 8, 8), np.uint8), labels=np.arange(4),
                  index=np.arange(4), attrs={"task": "classification", "source_hash": "a",
                                             "format": "cgankd.split/1"})
    rewritten = dataclasses.replace(split, attrs={**split.attrs, "source_hash": "b",
                                                  "format": "cgankd.split/2"})
    assert data_fingerprint(rewritten) == data_fingerprint(split)
    for other in (dataclasses.replace(split, labels=np.arange(4)[::-1].copy()),
                  dataclasses.replace(split, attrs={**split.attrs, "task": "regression"})):
        assert data_fingerprint(other) != data_fingerprint(split)


def test_gan_log_holds_every_record_after_resume(tmp_path):
    _gan(toy_split(), tmp_path / "whole")
    _gan_killed_at(toy_split(), tmp_path / "cut", 6)  # after the checkpoint at 4
    (tmp_path / "cut" / "log.jsonl").unlink()  # Snakemake deletes outputs before a rerun
    assert _gan(toy_split(), tmp_path / "cut")["start_iteration"] == 4
    whole = _records(tmp_path / "whole" / "log.jsonl", "seconds")
    assert [r["iteration"] for r in whole] == list(range(1, 11))
    assert _records(tmp_path / "cut" / "log.jsonl", "seconds") == whole
    _same_generator(tmp_path / "whole", tmp_path / "cut")


def test_gan_starts_over_when_the_training_split_changed(tmp_path, capsys):
    _gan_killed_at(toy_split(), tmp_path, 6)
    changed = toy_split()
    changed.images[0] = 255 - changed.images[0]  # one image differs, same path and size
    capsys.readouterr()
    assert _gan(changed, tmp_path)["start_iteration"] == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "from scratch" in line]
    assert len(lines) == 1 and "other input files (train)" in lines[0]
    _gan(changed, tmp_path / "fresh")
    _same_generator(tmp_path / "fresh", tmp_path)


def test_gan_sigterm_checkpoints_at_the_iteration_boundary(tmp_path, capsys):
    _gan(toy_split(), tmp_path / "whole")

    def terminate(it, record):
        if it == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # as Snakemake or a scheduler would

    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        _gan(toy_split(), tmp_path / "cut", on_iteration=terminate)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert "stopped by SIGTERM after step 5" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is handler  # the loop's handlers are gone
    assert _gan(toy_split(), tmp_path / "cut")["start_iteration"] == 5
    _same_generator(tmp_path / "whole", tmp_path / "cut")
    assert _records(tmp_path / "cut" / "log.jsonl", "seconds") == \
        _records(tmp_path / "whole" / "log.jsonl", "seconds")


# --- the DRE fit ------------------------------------------------------------------------------

def test_dre_fit_resumes_without_retraining_its_extractor(tmp_path, monkeypatch):
    from cgankd.stages import fit_dre as dre_stage
    from cgankd.stages.train_cgan import train_cgan
    from cgankd.h5io import read_split
    from test_fake_stages import DRE, GAN
    paths = write_bar_splits(tmp_path, "classification")
    train_cgan(read_split(paths["train"]), GAN, tmp_path / "cgan", seed=0, progress=False)
    options = {**DRE, "fit": {"epochs": 6, "val_every": 2}}

    def run(name):
        return dre_stage.run(paths["train"], paths["val"], tmp_path / "cgan" / "generator.pt",
                                 tmp_path / name / "dre.pt", tmp_path / name / "curves.json",
                                 options=options, seed=0, progress=False)

    run("whole")
    monkeypatch.setattr(dre_stage, "DR_CHECKPOINT_EPOCHS", 2)

    kill_after(monkeypatch, "dre fit", 4)
    with pytest.raises(Killed):
        run("cut")
    monkeypatch.undo()
    monkeypatch.setattr(dre_stage, "train_extractor", None)  # it comes from the checkpoint
    run("cut")
    assert not (tmp_path / "cut" / "dre.fit.resume.pt").exists()
    whole, cut = (load_checkpoint(tmp_path / name / "dre.pt") for name in ("whole", "cut"))
    for part in ("extractor", "dr", "label_code"):
        for key, value in whole[part].items():
            assert torch.equal(value, cut[part][key]), (part, key)
    whole, cut = (json.loads((tmp_path / name / "curves.json").read_text())
                  for name in ("whole", "cut"))
    for curves in (whole, cut):
        for record in curves["extractor_history"]:
            record.pop("seconds")  # wall time
    assert whole == cut


def test_gan_time_interval_checkpoints_before_checkpoint_every(tmp_path):
    from cgankd.errors import CgankdInputError
    from cgankd.stages.train_cgan import train_cgan
    from test_gan import TINY

    def kill(it, record):
        if it == 3:
            raise Killed
    options = {**TINY, "iterations": 10, "checkpoint_every": 1000, "checkpoint_seconds": 1e-9}
    with pytest.raises(Killed):
        train_cgan(toy_split(), options, tmp_path, progress=False, on_iteration=kill)
    # on_iteration runs before that iteration's checkpoint: the last one is after iteration 2
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2
    # The cadence is not part of the trajectory: another one still resumes.
    summary = train_cgan(toy_split(), {**options, "checkpoint_seconds": 600}, tmp_path,
                         progress=False)
    assert summary["start_iteration"] == 2
    with pytest.raises(CgankdInputError, match="checkpoint_seconds"):
        train_cgan(toy_split(), {**options, "checkpoint_seconds": 0}, tmp_path,
                   progress=False)


@pytest.mark.parametrize("kill_at_save", [2, 4])  # in the regressor's epochs; in y2h's
def test_ili_pretraining_resumes_to_the_uninterrupted_embedding(tmp_path, monkeypatch,
                                                                   kill_at_save):
    from cgankd.stages.train_cgan import train_cgan
    from test_gan import TINY
    options = {**TINY, "iterations": 2, "label_input": "ili", "ili_width": 0.125,
               "ili_blocks": [1, 1, 1, 1], "ili_regressor_epochs": 3, "ili_y2h_epochs": 3}
    split = toy_split(task="regression", channels=3)
    train_cgan(split, options, tmp_path / "whole", seed=5, progress=False)
    saves = []

    def killed(self, done):
        saves.append(done)
        if self.desc == "ILI" and len(saves) == kill_at_save:
            raise Killed
    monkeypatch.setattr(Resume, "stop_if_asked", killed)
    with pytest.raises(Killed):
        train_cgan(split, options, tmp_path / "cut", seed=5, progress=False)
    monkeypatch.undo()
    train_cgan(split, options, tmp_path / "cut", seed=5, progress=False)
    whole, cut = (torch.load(tmp_path / name / "generator.pt", weights_only=True)
                  for name in ("whole", "cut"))
    for part in ("y2h_state_dict", "state_dict"):
        for key, value in whole[part].items():
            assert torch.equal(value, cut[part][key]), (part, key)
    assert (tmp_path / "whole" / "ili_pretrain.json").read_text() == \
        (tmp_path / "cut" / "ili_pretrain.json").read_text()
