"""A job's log is what a cluster user reads: every failure lands there, progress stays readable.

``stage_job`` (every workflow script's wrapper) must put a bad-input error as one line, and an
unexpected exception as that line plus its traceback, into the rule's log, while the console
gets the one line and the job exits non-zero. Progress bars written to a log file become one
plain line per interval instead of carriage-return frames.
"""

import runpy
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from conftest import make_data_cfg, split_outputs
from tqdm import tqdm

from cgankd import launch
from cgankd.jobs import stage_job
from cgankd.progress import LogLines

REPO = Path(__file__).resolve().parents[1]


class _Output(dict):
    """What ``snakemake.output`` offers the adapters: named paths and ``items()``."""

    __getattr__ = dict.__getitem__


def run_adapter(script: str, **job) -> None:
    """Run ``workflow_scripts/<script>`` as Snakemake would, with a stand-in ``snakemake``."""
    runpy.run_path(str(REPO / "workflow_scripts" / script),
                   init_globals={"snakemake": SimpleNamespace(threads=1, **job)})


# ------------------------------------------------------------------------------ crash logs

def test_imagefolder_pointed_at_an_h5_file_fails_with_one_line_in_the_log(tmp_path, capsys):
    h5 = tmp_path / "mine.h5"
    with h5py.File(h5, "w") as f:
        f["images"] = np.zeros((4, 1, 8, 8), np.uint8)
        f["labels"] = np.arange(4)
    log = tmp_path / "logs" / "prepare_data.log"
    out = split_outputs(tmp_path / "out")
    with pytest.raises(SystemExit) as exit_:
        run_adapter("prepare_data.py", log=[str(log)], output=_Output(out),
                    params=SimpleNamespace(data=make_data_cfg(dataset="imagefolder",
                                                              root=str(h5)),
                                           source_hash="test"))
    assert exit_.value.code == 1
    text = log.read_text()
    assert text.count("\n") == 1 and text.startswith("cgankd: error: data.root: ")
    assert str(h5) in text and "one sub-folder of images per class" in text
    assert "dataset: h5" in text and "NotADirectoryError" not in text
    assert capsys.readouterr().err.strip() == text.strip()  # the same one line on the console
    assert not any(p.exists() for p in out.values())


def test_an_unexpected_exception_leaves_line_and_traceback_in_the_log(tmp_path, capsys):
    log = tmp_path / "job.log"

    def broken_stage():
        print("started")
        raise KeyError("a bug, not bad input")

    with pytest.raises(SystemExit) as exit_, stage_job(log):
        broken_stage()
    assert exit_.value.code == 1
    text = log.read_text()
    first, line = text.splitlines()[:2]
    assert first == "started"
    assert line == "cgankd: error: KeyError: 'a bug, not bad input'"
    assert "Traceback (most recent call last):" in text and "in broken_stage" in text
    console = capsys.readouterr().err.strip()
    assert console == f"{line} (traceback in {log})"  # one line on the console


def test_a_job_without_a_log_keeps_the_traceback_on_the_console(capsys):
    with pytest.raises(SystemExit), stage_job(None):
        raise RuntimeError("no log here")
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("cgankd: error: RuntimeError: no log here")


# ----------------------------------------------------------------------- progress in a log

def test_progress_bar_in_a_log_file_is_plain_lines(tmp_path):
    """A real tqdm loop, its stderr redirected to a file as Snakemake does for ``log:``."""
    log = tmp_path / "job.log"
    script = textwrap.dedent(f"""
        import time
        from tqdm import tqdm
        from cgankd.jobs import stage_job
        with stage_job({str(log)!r}):
            for i in tqdm(range(3000), desc="steps", mininterval=0, miniters=1):
                time.sleep(0.0002)
                if i == 1500:
                    tqdm.write("evaluated at step 1500")
            print("done")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, stderr=subprocess.DEVNULL,
                   timeout=120)
    raw = log.read_bytes()
    assert b"\r" not in raw
    lines = raw.decode().splitlines()
    # first frame, the bar beside the message, the message, the final frame, "done"
    assert len(lines) <= 6, lines
    assert lines[0].startswith("steps:   0%")
    assert "evaluated at step 1500" in lines and lines[-1] == "done"
    assert lines[-2].startswith("steps: 100%") and "3000/3000" in lines[-2]


def test_log_lines_keeps_one_frame_per_interval():
    now = [0.0]
    out = _Sink()
    lines = LogLines(out, interval=10, clock=lambda: now[0])
    for step in range(100):  # one frame a second for 100 s
        lines.write(f"\rbar {step}   ")
        now[0] += 1
    lines.write("\n")
    lines.write("partial")
    lines.close()
    assert out.text.splitlines() == [f"bar {s}" for s in range(0, 99, 10)] + ["bar 99",
                                                                              "partial"]


def test_torchrun_worker_output_is_plain_lines(tmp_path, monkeypatch):
    log = tmp_path / "worker.log"

    def worker(spec_path):
        for _ in tqdm(range(500), desc="worker", mininterval=0, miniters=1):
            pass
        return 0

    monkeypatch.setattr(launch, "_worker", worker)
    with open(log, "w") as f:
        monkeypatch.setattr(sys, "stderr", f)
        assert launch.main([str(tmp_path / "stage.json")]) == 0
        assert sys.stderr is f
    text = log.read_text()
    assert "\r" not in text and len(text.splitlines()) <= 2 and "500/500" in text


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass
