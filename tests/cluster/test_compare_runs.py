"""compare_runs.py, the SLURM integration script's check that two runs gave the same results:
equal runs pass, and a changed value in a dataset, a checkpoint or the table is named."""

import importlib.util
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import torch

spec = importlib.util.spec_from_file_location(
    "compare_runs", Path(__file__).with_name("compare_runs.py"))
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def make_run(root: Path, created: str, seconds: float) -> Path:
    res = root / "results" / "tiny"
    (res / "logs").mkdir(parents=True)
    with h5py.File(res / "fake.h5", "w") as f:
        f["labels"] = np.arange(5)
        f.attrs["config_hash"] = '"abc"'
        f.create_group("provenance").attrs["created_utc"] = json.dumps(created)
    torch.save({"state_dict": {"w": torch.ones(3)}, "history": [{"step": 1, "seconds": seconds}]},
               res / "model.pt")
    (res / "table.md").write_text("| teacher | 10.02 |\n\n| stage | jobs |\n| all | %s |\n" % seconds)
    (res / "logs" / "job.log").write_text(f"took {seconds}s")
    return root


def test_runs_differing_only_in_clocks_are_equal(tmp_path, capsys):
    a = make_run(tmp_path / "a", "2026-01-01T00:00:00", 1.5)
    b = make_run(tmp_path / "b", "2026-01-02T00:00:00", 9.0)
    assert compare_runs.main([str(a), str(b)]) == 0
    assert "equal: 3 result files" in capsys.readouterr().out


def test_a_changed_value_is_named(tmp_path, capsys):
    a = make_run(tmp_path / "a", "t", 1.0)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    res = b / "results" / "tiny"
    with h5py.File(res / "fake.h5", "r+") as f:
        f["labels"][2] = 7
    torch.save({"state_dict": {"w": torch.tensor([1.0, 1.0, 1.0 + 1e-6])},
                "history": [{"step": 1, "seconds": 1.0}]}, res / "model.pt")
    (res / "table.md").write_text("| teacher | 10.03 |\n")
    (res / "extra.json").write_text("{}")
    assert compare_runs.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "tiny/fake.h5.labels: arrays differ (max abs difference 5.0)" in out
    assert "tiny/model.pt.state_dict.w: arrays differ" in out
    assert "tiny/table.md: line 1: '| teacher | 10.02 |' vs '| teacher | 10.03 |'" in out
    assert "tiny/extra.json: only in" in out


def test_no_results_is_a_failure(tmp_path):
    (tmp_path / "a" / "results").mkdir(parents=True)
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "a")]) == 1
