"""The quality section of the results table, CAS beside the real-only students, and the sample
sheets with real images beside the fakes."""

import json

import numpy as np
import pytest
from PIL import Image

from cgankd.report.plots import _sheet, plot_fake_sheets
from cgankd.report.quality_table import beside, cas_summary, quality_markdown, with_cas
from toy_data import write_fake_set, write_toy_split


def quality_json(task="classification", fid=0.8, with_reference=True):
    group = ("intra_fid", 2.0) if task == "classification" else ("window_fid_mean", 3.0)
    label = ("label_agreement", 97.6) if task == "classification" else ("label_score", 9.0)
    q = {"task": task, "n_fake": 1000, "fid": fid, group[0]: group[1], "precision": 0.7,
         "recall": 0.5, "density": 0.9, "coverage": 0.6, label[0]: label[1]}
    if task == "regression":
        q["label_unit"] = "degrees"
    if with_reference:
        q["reference"] = {"n_fake": 100, "fid": 0.27, group[0]: 1.0, "precision": 0.8,
                          "recall": 0.75, "density": 1.0, "coverage": 0.8,
                          label[0]: 96.0 if task == "classification" else 4.0}
        q["matched"] = {"n_fake": 100, "draws": 5, "fid": 0.81, group[0]: 2.5,
                        "precision": 0.72, "recall": 0.6, "density": 0.88, "coverage": 0.64,
                        label[0]: label[1]}
    return q


def evaluated(role, seed, value, fakes, task="classification", student="cnn4", method="none"):
    metric = "accuracy" if task == "classification" else "mae"
    return {"role": role, "task": task, "seed": seed, metric: value, "kd_method": method,
            "identity": {"student": student, "fakes": fakes}}


def test_beside_formats_value_reference_and_ratio():
    assert beside(0.8, 0.27) == "0.80 (ref 0.27, 2.96x)"
    assert beside(0.0121, 0.00066, "g") == "0.0121 (ref 0.000660, 18.33x)"
    assert beside(0.8, None) == "0.80"
    assert beside(None, 0.5) == "n/a (ref 0.50)"
    assert beside(0.3, 0.0) == "0.30 (ref 0.00)"  # no ratio to a zero reference


def test_classification_rows_compare_matched_values_with_the_reference():
    text = quality_markdown({"unprocessed": quality_json(), "filtered": quality_json(fid=0.9)})
    lines = text.splitlines()
    assert lines[0].startswith("| fake set | FID | Intra-FID | precision | recall | density | "
                               "coverage | label agreement (%) | CAS accuracy (%)")
    row = next(line for line in lines if line.startswith("| unprocessed |"))
    # the size-matched FID (0.81), not the whole set's (0.80), is compared with the reference
    assert "0.810 (ref 0.270, 3.00x)" in row
    assert "0.72 (ref 0.80, 0.90x)" in row  # precision
    assert "0.64 (ref 0.80, 0.80x)" in row  # coverage
    assert "97.6 (ref 96.0, 1.02x)" in row  # label agreement: all fakes
    assert row.endswith("| n/a |")  # no CAS given
    assert "100 images, mean of 5 draws" in text
    # the whole fake sets' values follow in their own table
    full = next(line for line in lines if line.startswith("| filtered | 1000 |"))
    assert full.startswith("| filtered | 1000 | 0.900 | 2.00 | 0.70 | 0.50 | 0.90 | 0.60 |")


def test_regression_rows_and_files_without_a_reference():
    text = quality_markdown({"relabelled": quality_json("regression")})
    assert "| window FID |" in text.splitlines()[0]
    assert "label score (degrees)" in text and "CAS MAE" in text
    assert "9.00 (ref 4.00, 2.25x)" in text
    old = quality_markdown({"filtered": quality_json(with_reference=False)})
    row = next(line for line in old.splitlines() if line.startswith("| filtered |"))
    assert row == "| filtered | 0.800 | 2.00 | 0.70 | 0.50 | 0.90 | 0.60 | 97.6 | n/a |"
    assert "No reference" in old


def test_the_notes_name_the_feature_space_measured_in():
    assert "in the metric net's feature space" in quality_markdown(
        {"relabelled": quality_json("regression")})
    text = quality_markdown({"relabelled": {**quality_json("regression"),
                                            "feature_space": "extractor"}})
    assert "in the quality extractor's feature space" in text
    assert "metric net's feature space" not in text


def test_cas_summary_pairs_each_rung_with_the_real_only_students_of_its_seeds():
    results = [evaluated("cas", 0, 90.0, "filtered"), evaluated("cas", 1, 92.0, "filtered"),
               evaluated("cas", 0, 88.0, "unprocessed"),
               evaluated("student", 0, 95.0, "real"), evaluated("student", 1, 97.0, "real"),
               evaluated("student", 2, 50.0, "real"),  # a seed CAS did not run: left out
               evaluated("student", 0, 10.0, "real", method="kd"),  # not NOKD
               evaluated("student", 0, 11.0, "filtered"),  # a student with fakes
               evaluated("student", 0, 12.0, "real", student="cnn8")]  # another net
    summary = cas_summary(results)
    filtered = summary["filtered"]
    assert filtered["seeds"] == [0, 1] and filtered["mean"] == pytest.approx(91.0)
    assert filtered["std"] == pytest.approx(np.std([90, 92], ddof=1))
    assert filtered["real_mean"] == pytest.approx(96.0) and filtered["real_seeds"] == 2
    assert filtered["ratio"] == pytest.approx(91 / 96)
    unprocessed = summary["unprocessed"]
    assert unprocessed["std"] is None and unprocessed["real_mean"] == pytest.approx(95.0)


def test_cas_cells_in_the_table(tmp_path):
    files = []
    for i, r in enumerate([evaluated("cas", 0, 5.5, "relabelled", task="regression"),
                           evaluated("student", 0, 5.0, "real", task="regression")]):
        files.append(tmp_path / f"m{i}.json")
        files[-1].write_text(json.dumps(r))
    quality = with_cas({"relabelled": quality_json("regression")}, files)
    assert quality["relabelled"]["cas"]["metric"] == "mae"
    text = quality_markdown(quality)
    assert "CAS MAE, cnn4" in text
    assert "5.50 (real 5.00, 1.10x)" in text
    lonely = with_cas({"relabelled": quality_json("regression")}, files[:1])
    assert "(real-only not found)" in quality_markdown(lonely)


# ---------------------------------------------------------------- sample sheets

def digit_like(n, seed, value):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, 16, 16), np.uint8)
    images[:, :, 4:12, 4:12] = value + rng.integers(0, 20, (n, 1, 8, 8))
    return images


def test_sheets_put_real_images_beside_the_fakes_with_white_gaps(tmp_path):
    labels = np.repeat(np.arange(3), 20).astype(np.int64)
    train = tmp_path / "train.h5"
    write_toy_split(train, images=digit_like(60, 0, 200), labels=labels,
                    class_names=["zero", "one", "two"])
    fake = write_fake_set(tmp_path / "fake.h5", digit_like(60, 1, 100), labels,
                          {"task": "classification", "num_classes": 3})
    out_real, out_plain = tmp_path / "with_real.png", tmp_path / "plain.png"
    plot_fake_sheets([fake, fake], ["a", "b"], out_real, train=train, per_row=4, n_real=2)
    plot_fake_sheets([fake], ["a"], out_plain, per_row=4)
    wide = np.asarray(Image.open(out_real).convert("L"))
    plain = np.asarray(Image.open(out_plain).convert("L"))
    assert wide.shape[1] > 2 * plain.shape[1]  # two panels, each with a real block
    # tiles on white: rows and columns of pure white separate the black tile backgrounds
    assert (wide == 255).all(axis=1).sum() > 3 and (plain == 255).all(axis=0).sum() > 3
    # the real images (value ~200) appear; the plain sheet has fakes (~100) only
    assert ((wide > 190) & (wide < 225)).sum() > 100
    assert ((plain > 190) & (plain < 225)).sum() < ((wide > 190) & (wide < 225)).sum() / 4


def test_regression_sheets_rows_follow_the_label_with_reals_at_the_nearest_labels(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.uniform(0, 90, 80).astype(np.float32)
    train = tmp_path / "train.h5"
    write_toy_split(train, task="regression", images=digit_like(40, 3, 150), labels=labels[:40])
    fake = write_fake_set(tmp_path / "fake.h5", digit_like(80, 4, 90), labels,
                          {"task": "regression", "label_min": 0.0, "label_max": 90.0})
    out = tmp_path / "reg.png"
    plot_fake_sheets([fake], ["relabelled"], out, train=train, per_row=5, rows=4)
    assert out.stat().st_size > 1000
    # each image's brightness encodes its row in the file: which rows a sheet row shows
    code = np.arange(80, dtype=np.uint8)
    write_fake_set(fake, np.broadcast_to(code[:, None, None, None], (80, 1, 4, 4)).copy(),
                   labels, {"task": "regression"})
    write_toy_split(train, task="regression", labels=labels[:40],
                    images=np.broadcast_to(code[:40, None, None, None], (40, 1, 4, 4)).copy())
    rows, names, task = _sheet(fake, train, per_row=5, n_real=2, n_rows=4, seed=0)
    targets = np.linspace(labels.min(), labels.max(), 4)
    assert task == "regression" and names[0] == f"{targets[0]:.1f} degrees"
    for target, (reals, fakes) in zip(targets, rows):
        shown = labels[fakes[:, 0, 0, 0]]
        assert np.all(np.diff(shown) >= 0)  # sorted by label
        nearest = np.sort(np.abs(labels - target))[:5]
        np.testing.assert_allclose(np.sort(np.abs(shown - target)), nearest)
        real_shown = labels[:40][reals[:, 0, 0, 0]]
        np.testing.assert_allclose(np.sort(np.abs(real_shown - target)),
                                   np.sort(np.abs(labels[:40] - target))[:2])
