"""The results table's paired statistics and the convergence check, on hand-computed numbers.

Every expected value below is worked out by hand from the listed per-seed scores; the t
quantiles are the printed table values t(0.975, 1) = 12.7062 and t(0.975, 2) = 4.3027.
"""

import json
import math
from pathlib import Path

import pytest

from cgankd.stages.aggregate import run as build_report
from cgankd.report.convergence import FLAG, convergence_check, flag_markdown
from cgankd.report.paired import gap_closed, paired_difference
from cgankd.report.table import aggregate, results_frame, summarise

T2 = 4.3027  # t(0.975, 2 dof)
T1 = 12.7062  # t(0.975, 1 dof)


def write_result(folder: Path, name: str, *, role: str = "student", seed: int = 0,
                 value: float, task: str = "classification", student: str = "cnn4",
                 fakes: str = "real", method: str = "none", variant: str = "NOKD",
                 **extra) -> Path:
    """A test_metrics.json as ``evaluate`` writes it (the fields the report reads)."""
    identity = {"variant": variant} if role == "teacher" else \
        {"student": student, "fakes": fakes, "variant": variant}
    result = {"role": role, "net": "cnn", "kd_method": method, "seed": seed, "task": task,
              "identity": identity, **extra}
    result["accuracy" if task == "classification" else "mae"] = value
    path = folder / f"{name}.json"
    path.write_text(json.dumps(result))
    return path


# accuracy per seed: NOKD, KD, cGAN-KD (seed 2 missing), cGAN-KD + KD; teacher 97
TABLE = {("real", "none", "NOKD"): [94.0, 94.0, 93.0],
         ("real", "kd", "KD"): [95.0, 96.0, 94.0],
         ("filtered", "none", "cGAN-KD"): [95.0, 95.5, None],
         ("filtered", "kd", "cGAN-KD + KD"): [95.5, 96.0, 95.5]}


@pytest.fixture
def table_files(tmp_path):
    files = [write_result(tmp_path, "teacher", role="teacher", value=97.0, variant="teacher",
                          budget="steps", steps=4000, selection="last",
                          trained_on={"machine": "x86_64", "processor": "", "torch": "2.9"})]
    for (fakes, method, variant), values in TABLE.items():
        for seed, value in enumerate(values):
            if value is not None:
                files.append(write_result(tmp_path, f"{fakes}_{method}_{seed}", seed=seed,
                                          value=value, fakes=fakes, method=method,
                                          variant=variant, budget="steps", steps=1500,
                                          selection="best",
                                          trained_on={"machine": "x86_64", "processor": "",
                                                      "torch": "2.9"}))
    return files


def test_paired_difference_three_seeds():
    d = paired_difference({0: 95.0, 1: 96.0, 2: 94.0}, {0: 94.0, 1: 94.0, 2: 93.0})
    # differences 1, 2, 1: mean 4/3, sd sqrt(1/3), se 1/3
    assert d["n"] == 3 and d["mean"] == pytest.approx(4 / 3)
    assert d["std"] == pytest.approx(math.sqrt(1 / 3))
    assert d["low"] == pytest.approx(4 / 3 - T2 / 3, abs=1e-4)
    assert d["high"] == pytest.approx(4 / 3 + T2 / 3, abs=1e-4)


def test_paired_difference_mae_pairs_common_seeds_and_signs_lower_as_better():
    # seed 3 has no variant run: pairs are seeds 0, 1; baseline - variant = 0.2, 0.4
    d = paired_difference({0: 5.0, 1: 5.5}, {0: 5.2, 1: 5.9, 3: 7.0}, higher_is_better=False)
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.3)
    half = T1 * (math.sqrt(0.02) / math.sqrt(2))  # sd of (0.2, 0.4) = sqrt(0.02)
    assert d["low"] == pytest.approx(0.3 - half, abs=1e-3)
    assert d["high"] == pytest.approx(0.3 + half, abs=1e-3)


def test_paired_difference_gives_no_interval_below_two_seeds():
    one = paired_difference({0: 95.0, 1: 90.0}, {0: 94.0})
    assert one["n"] == 1 and one["mean"] == pytest.approx(1.0) and math.isnan(one["low"])
    none = paired_difference({1: 95.0}, {0: 94.0})
    assert none["n"] == 0 and math.isnan(none["mean"])


def test_gap_closed_signs_and_no_gap():
    assert gap_closed(1.5, teacher=97.0, nokd_mean=94.0) == pytest.approx(0.5)
    assert gap_closed(0.3, teacher=4.0, nokd_mean=5.0, higher_is_better=False) == \
        pytest.approx(0.3)
    assert math.isnan(gap_closed(1.0, teacher=94.0, nokd_mean=94.0))  # no gap
    assert math.isnan(gap_closed(0.3, teacher=5.5, nokd_mean=5.0, higher_is_better=False))


def test_summary_compares_each_variant_with_its_baseline(table_files):
    summary = summarise(results_frame(table_files)).set_index("variant")
    nokd_mean = (94 + 94 + 93) / 3  # the gap: 97 - 93.667 = 3.333
    assert summary.loc["NOKD", "baseline"] == "" and math.isnan(summary.loc["NOKD", "delta"])
    kd = summary.loc["KD"]  # vs NOKD: 1, 2, 1
    assert kd["baseline"] == "NOKD" and kd["delta"] == pytest.approx(4 / 3)
    assert kd["delta_low"] == pytest.approx(4 / 3 - T2 / 3, abs=1e-4)
    assert kd["gap_closed_pct"] == pytest.approx(100 * (4 / 3) / (97 - nokd_mean))
    cgan = summary.loc["cGAN-KD"]  # vs NOKD on seeds 0, 1 only: 1.0, 1.5
    assert cgan["baseline"] == "NOKD" and cgan["n_paired"] == 2 and cgan["n_seeds"] == 2
    assert cgan["delta"] == pytest.approx(1.25)
    assert cgan["delta_high"] == pytest.approx(1.25 + T1 * 0.25, abs=1e-3)  # sd .3536, se .25
    both = summary.loc["cGAN-KD + KD"]  # vs KD: 0.5, 0.0, 1.5
    assert both["baseline"] == "KD" and both["delta"] == pytest.approx(2 / 3)
    assert both["gap_closed_pct"] == pytest.approx(100 * (2 / 3) / (97 - nokd_mean))
    assert summary.loc["teacher", "baseline"] == "" and summary.loc["teacher", "n_seeds"] == 1


def test_ablation_rungs_compare_with_nokd_and_fakes_with_kd_with_that_kd(tmp_path):
    files = [write_result(tmp_path, "nokd", value=90.0),
             write_result(tmp_path, "rung", value=91.0, fakes="unprocessed",
                          variant="ablation: unprocessed fakes"),
             write_result(tmp_path, "crd", value=92.0, fakes="filtered", method="crd",
                          variant="cGAN-KD + CRD")]
    summary = summarise(results_frame(files)).set_index("variant")
    assert summary.loc["ablation: unprocessed fakes", "baseline"] == "NOKD"
    assert summary.loc["ablation: unprocessed fakes", "delta"] == pytest.approx(1.0)
    # no real-only CRD student: named, not replaced by another baseline
    assert summary.loc["cGAN-KD + CRD", "baseline"] == "crd (not trained)"
    assert summary.loc["cGAN-KD + CRD", "n_paired"] == 0


def test_markdown_and_csv_carry_the_paired_columns_and_the_protocol(table_files, tmp_path):
    csv, md = tmp_path / "table.csv", tmp_path / "table.md"
    aggregate(table_files, csv, md)
    text = md.read_text()
    assert "| cnn4 | KD | 95.00 ± 1.00 | NOKD | +1.33 [-0.10, +2.77] | 40 | 3 |" in text
    assert "| cnn4 | cGAN-KD | 95.25 ± 0.35 | NOKD | +1.25 [-1.93, +4.43] | 38 | 2 |" in text
    assert "| cnn4 | cGAN-KD + KD | 95.67 ± 0.29 | KD | +0.67 [-1.23, +2.56] | 20 | 3 |" in text
    assert "|  | teacher | 97.00 |  |  |  | 1 |" in text
    assert "| cnn4 | NOKD | 93.67 ± 0.58 |  |  |  | 3 |" in text
    assert "- teacher: budget steps (4000 steps per run); selection last" in text
    assert "- students: budget steps (1500 steps per run); selection best" in text
    assert "trained on: x86_64, torch 2.9. Reproducible on one machine only" in text
    header = csv.read_text().splitlines()[0].split(",")
    for column in ("variant", "mean", "std", "baseline", "delta", "delta_low", "delta_high",
                   "gap_closed_pct", "n_paired", "n_seeds", "seeds"):
        assert column in header, column


def test_epoch_budget_names_the_step_range_and_old_files_say_not_recorded(tmp_path):
    files = [write_result(tmp_path, "a", value=90.0, budget="epochs", epochs=30, steps=100),
             write_result(tmp_path, "b", value=91.0, fakes="filtered", variant="cGAN-KD",
                          budget="epochs", epochs=30, steps=600),
             write_result(tmp_path, "t", role="teacher", variant="teacher", value=95.0)]
    md = tmp_path / "t.md"
    aggregate(files, tmp_path / "t.csv", md)
    text = md.read_text()
    assert "students: budget epochs (30 epochs over each variant's own set (100-600 steps))" \
        in text
    assert "teacher: budget and selection not recorded" in text
    assert "trained on: not recorded" in text


def _convergence_files(folder: Path, base: list[float], long: list[float], teacher: tuple,
                       task: str = "classification") -> tuple[list[Path], list[Path]]:
    b = [write_result(folder, "t1", role="teacher", variant="teacher", value=teacher[0],
                      task=task)]
    g = [write_result(folder, "t2", role="teacher", variant="teacher", value=teacher[1],
                      task=task)]
    for seed, (v1, v2) in enumerate(zip(base, long)):
        b.append(write_result(folder, f"b{seed}", seed=seed, value=v1, task=task))
        g.append(write_result(folder, f"l{seed}", seed=seed, value=v2, task=task))
    return b, g


def test_convergence_flags_a_student_whose_longer_run_is_better_beyond_noise(tmp_path):
    # 2x minus 1x: 1, 2, 1 -> CI [-0.10, +2.77] contains 0; +2, +2.5, +2 -> CI above 0
    base, long = _convergence_files(tmp_path, [94, 94, 93], [95, 96, 94], (97.0, 97.2))
    check = convergence_check(base, long, 2)
    assert check["students"]["cnn4"]["verdict"] == "converged" and check["flagged"] == []
    assert check["teacher"]["noise_std"] == pytest.approx(math.sqrt(1 / 3))  # NOKD 1x std
    assert check["teacher"]["verdict"] == "converged"  # +0.2 < 0.577
    assert flag_markdown(check) == ""
    base, long = _convergence_files(tmp_path, [94, 94, 93], [96, 96.5, 95], (97.0, 98.0))
    check = convergence_check(base, long, 2)
    s = check["students"]["cnn4"]
    assert s["gain"] == pytest.approx(13 / 6) and s["verdict"] == FLAG
    half = T2 * math.sqrt(1 / 12) / math.sqrt(3)  # differences 2, 2.5, 2: sd sqrt(1/12)
    assert s["ci_low"] == pytest.approx(13 / 6 - half, abs=1e-4)
    assert check["teacher"]["verdict"] == FLAG and check["flagged"] == ["teacher", "cnn4"]
    assert flag_markdown(check).startswith(f"**{FLAG}**: 2x the training budget improves "
                                           f"teacher +1.00")


def test_convergence_on_mae_counts_a_lower_error_as_better(tmp_path):
    base, long = _convergence_files(tmp_path, [5.2, 5.4, 5.3], [4.9, 5.0, 5.0], (4.3, 4.25),
                                    task="regression")
    check = convergence_check(base, long, 3)
    s = check["students"]["cnn4"]  # 1x - 3x: 0.3, 0.4, 0.3
    assert s["gain"] == pytest.approx(1 / 3) and s["verdict"] == FLAG
    assert check["teacher"]["gain"] == pytest.approx(0.05)
    assert check["teacher"]["verdict"] == "converged"  # 0.05 < NOKD std 0.1
    one_seed, longer = _convergence_files(tmp_path, [5.2], [4.0], (4.3, 4.0), task="regression")
    undetermined = convergence_check(one_seed, longer, 2)
    assert undetermined["students"]["cnn4"]["verdict"] == "undetermined"
    assert undetermined["teacher"]["verdict"] == "undetermined" and not undetermined["flagged"]


def test_build_report_puts_the_flag_on_top_and_writes_strict_json(table_files, tmp_path):
    (tmp_path / "c").mkdir()
    base, long = _convergence_files(tmp_path / "c", [94, 94, 93], [96, 96.5, 95], (97, 97.1))
    out = {k: str(tmp_path / f) for k, f in (("csv", "table.csv"), ("md", "table.md"),
                                             ("chart", "variants.png"),
                                             ("sheets", "fake_samples.png"),
                                             ("convergence", "convergence.json"))}
    build_report(metrics=[str(p) for p in table_files], quality=[], fakes=[], rungs=[],
                 benchmarks=[], outputs=out, convergence_base=base, convergence=long, factor=2)
    text = Path(out["md"]).read_text()
    assert text.startswith(f"**{FLAG}**: 2x the training budget improves NOKD of cnn4 +2.17")
    assert "| NOKD cnn4 | 93.67 ± 0.58 | 95.83 ± 0.76 | +2.17 [+1.45, +2.88] | 3 | " \
        f"{FLAG} |" in text
    check = json.loads(Path(out["convergence"]).read_text(), parse_constant=pytest.fail)
    assert check["flagged"] == ["cnn4"] and check["teacher"]["verdict"] == "converged"


def test_evaluate_copies_the_protocol_from_new_and_old_model_files():
    from cgankd.stages.evaluate import training_protocol

    new = training_protocol({"budget": "epochs", "steps": 600, "epochs": 30, "passes": 30.0,
                             "selection": "last", "recipe": {"budget": "epochs"},
                             "provenance": {"machine": "x86_64", "processor": "",
                                            "torch": "2.9", "host": "h", "git_sha": "x"}})
    assert new == {"budget": "epochs", "steps": 600, "epochs": 30, "passes": 30.0,
                   "selection": "last", "trained_on": {"machine": "x86_64", "processor": "",
                                                       "torch": "2.9", "host": "h"}}
    old = training_protocol({"recipe": {"steps": 1500}})  # before budget and selection
    assert old["budget"] == "steps" and old["steps"] == 1500 and old["selection"] == "best"
    assert old["trained_on"] == {"machine": None, "processor": None, "torch": None, "host": None}
