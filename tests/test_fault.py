"""Fault test: a training job SIGKILLed at a random step, rerun with --rerun-incomplete.

The tiny pipeline of test_workflow_pipeline trains a GAN and a student through Snakemake; each
run is killed (Snakemake and its job, with SIGKILL, as a crashed machine would leave them) once
the job's log shows a randomly drawn step, then rerun. The final weights and the full log must
equal an uninterrupted run's: nothing lost, nothing trained twice on other randomness.
"""

import copy
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from test_workflow_pipeline import REPO, TINY

pytestmark = pytest.mark.slow

ITERATIONS = STEPS = 60
CONFIG = copy.deepcopy(TINY)
CONFIG["gan"]["options"].update(iterations=ITERATIONS, checkpoint_every=4)
CONFIG["students"]["recipe"] = {**TINY["students"]["recipe"], "steps": STEPS, "eval_every": 2,
                                "checkpoint_every": 4}
RESULTS = Path("results") / CONFIG["experiment"]
GAN = (RESULTS / "cgan" / "generator.pt", RESULTS / "cgan" / "log.jsonl", "iteration")
STUDENT = (RESULTS / "students/cnn2/real/none/seed0/model.pt",
           RESULTS / "students/cnn2/real/none/seed0/train_history.jsonl", "step")


def _snakemake(work: Path, *targets: Path, extra: tuple[str, ...] = ()) -> list[str]:
    # --nolock: a SIGKILLed Snakemake cannot remove its lock (a user would run --unlock)
    return [sys.executable, "-m", "snakemake", *map(str, targets), "-s", str(REPO / "Snakefile"),
            "-d", str(work), "--cores", "1", "--nolock", *extra,
            "--configfile", str(work / "tiny.yaml")]  # last: it takes several values


def _run(work: Path, *targets: Path, extra: tuple[str, ...] = ()) -> None:
    done = subprocess.run(_snakemake(work, *targets, extra=extra), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}  # wall time
            for line in path.read_text().splitlines()]


def _kill_at(work: Path, targets: tuple[Path, ...], log: Path, field: str, step: int) -> None:
    """Run Snakemake for ``targets``; SIGKILL it and its job once ``log`` reaches ``step``."""
    job = subprocess.Popen(_snakemake(work, *targets, extra=("--rerun-incomplete",)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.poll() is None:
        try:
            lines = (work / log).read_text().splitlines()
            if lines and json.loads(lines[-1])[field] >= step:
                break
        except (OSError, ValueError, KeyError):
            pass  # not written yet, or a line caught mid-write
        time.sleep(0.005)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_sigkilled_training_jobs_rerun_to_the_uninterrupted_result(tmp_path):
    rng = random.Random(15)  # the kill steps: random, but the same on every run of the test
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for work in (whole, cut):
        work.mkdir()
        (work / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    _run(whole, GAN[0], STUDENT[0], extra=("--cores", "2"))
    # The GAN killed at a random iteration; then, in a rerun of both jobs, the student at a
    # random step (the GAN resumes in that rerun or, if the student ran first, the next one).
    _kill_at(cut, (GAN[0],), *GAN[1:], rng.randrange(5, ITERATIONS - 10))
    assert not (cut / GAN[0]).exists(), "the GAN finished before the kill"
    _kill_at(cut, (GAN[0], STUDENT[0]), *STUDENT[1:], rng.randrange(5, STEPS - 10))
    assert not (cut / STUDENT[0]).exists(), "the student finished before the kill"
    _run(cut, GAN[0], STUDENT[0], extra=("--rerun-incomplete",))
    for job in ("train_cgan", "train_student/cnn2/real/none/seed0"):  # resumed, not redone
        assert "resuming from" in (cut / RESULTS / "logs" / f"{job}.log").read_text(), job
    for target, log, field in (GAN, STUDENT):
        assert _records(cut / log) == _records(whole / log)
        weights = [torch.load(work / target, weights_only=True)["state_dict"]
                   for work in (whole, cut)]
        _same_weights(*weights)


def test_ctrl_c_stops_a_running_job_at_a_step_boundary_with_a_checkpoint(tmp_path):
    # Ctrl-C in a terminal signals Snakemake's whole process group, the job included; the job
    # must stop at the next step with a checkpoint instead of training to its end (20,000 steps
    # here: minutes, where the stop takes seconds). A SIGINT to Snakemake's pid alone is not
    # passed on by its local executor, which waits for the job (README: Running elsewhere).
    config = copy.deepcopy(CONFIG)
    config["students"]["recipe"].update(steps=20_000, checkpoint_every=100_000, eval_every=50)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    job = subprocess.Popen(_snakemake(tmp_path, STUDENT[0]), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while job.poll() is None and time.monotonic() < deadline:
        history = tmp_path / STUDENT[1]
        if history.exists() and history.read_text().strip():
            break  # training has started
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGINT)
    stopped_at = time.monotonic()
    job.wait(timeout=120)
    assert job.returncode != 0 and time.monotonic() - stopped_at < 60
    # the job's log (Snakemake keeps logs of failed jobs; it may delete their outputs, the
    # history among them, which the checkpoint holds for the rerun)
    log = (tmp_path / RESULTS / "logs/train_student/cnn2/real/none/seed0.log").read_text()
    stopped = re.search(r"stopped by SIGINT after step (\d+)", log)
    assert stopped and int(stopped.group(1)) < 20_000, log[-2000:]
    assert (tmp_path / STUDENT[0]).with_suffix(".resume.pt").exists()
