"""fit_dre, subsample, filter_relabel and fake_quality on a tiny, fast problem.

A real (tiny) generator is trained for a few iterations on 8-px synthetic images; the stages
must then produce files with the documented layout, counts and label semantics.
"""

import json

import h5py
import numpy as np
import pytest
import torch

from cgankd import formats
from cgankd.dre.dre_file import load_dre
from cgankd.errors import CgankdInputError
from cgankd.filtering import classification_losses
from cgankd.formats import check_fields
from cgankd.gan.generate import generate_to_h5
from cgankd.h5io import check_h5, decode_attrs, open_h5, read_array, read_split
from cgankd.stage_options.ladder import options_for_method
from cgankd.stages import _pool as pool_passes
from cgankd.stages import filter_relabel as filter_stage
from cgankd.stages._training import train_model
from cgankd.stages.fake_quality import run as write_quality
from cgankd.stages.filter_relabel import run as filter_relabel
from cgankd.stages.fit_dre import run as fit_dre
from cgankd.stages.subsample import checked_subsample_options
from cgankd.stages.subsample import run as subsample
from cgankd.stages.train_cgan import train_cgan
from cgankd.stages.train_quality_extractor import run as train_quality_extractor
from cgankd.train.model_file import load_model
from cgankd.train.resume import Resume
from cgankd.train.trainer import predict
from toy_data import NUM_CLASSES, write_bar_splits, write_toy_split

K = NUM_CLASSES  # the toy set's classes
GAN = {"iterations": 6, "batch_size": 16, "g_ch": 8, "d_ch": 8, "dim_z": 8, "dim_shared": 8,
       "checkpoint_every": 3, "sample_every": 0, "ema_start": 2}
DRE = {"extractor_width": 4, "dr_hidden": [16, 16, 8, 8, 8], "batch_size": 32,
       "extractor_recipe": {"steps": 6, "eval_every": 3, "batch_size": 16, "crop_pad": 0,
                            "flip": False},
       "fit": {"epochs": 2, "val_every": 1}}
SUB = {"per_class": 12, "label_grid": 4, "per_label": 9, "n_burnin": 20, "batch_size": 16,
       "label_window": False}


@pytest.fixture(scope="module", params=["classification", "regression"])
def trained(request, tmp_path_factory):
    """Splits, a teacher, a generator and a DR model for one task."""
    task = request.param
    folder = tmp_path_factory.mktemp(task)
    paths = write_bar_splits(folder, task)
    train_cgan(read_split(paths["train"]), GAN, folder / "cgan", seed=0, progress=False)
    train_model(role="teacher", train=paths["train"], val=paths["val"],
                model=folder / "teacher.pt", history=folder / "teacher.jsonl",
                net={"net": "cnn", "kwargs": {"width": 4, "blocks": 2}},
                recipe={"steps": 20, "batch_size": 16, "eval_every": 10, "crop_pad": 0,
                        "flip": False}, seed=0, progress=False)
    fit_dre(paths["train"], paths["val"], folder / "cgan" / "generator.pt", folder / "dre.pt",
            folder / "curves.json", options=DRE, seed=0, progress=False)
    return task, folder, paths


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}


def test_fit_dre_writes_curves_and_a_loadable_model(trained):
    task, folder, _ = trained
    curves = json.loads((folder / "curves.json").read_text())
    assert len(curves["dr"]) == 2 and "extractor_val" in curves
    # held-out selection ran on the validation split: every epoch scored, one kept
    assert all("val_sp" in row for row in curves["dr"])
    assert curves["dr"][-1]["selected_epoch"] in (0, 1, 2)
    extractor, psi, code, meta = load_dre(folder / "dre.pt", "cpu")
    assert meta["task"] == task and (code is not None) == (task == "classification")


@pytest.mark.parametrize("method", ["none", "cdrrs"])
def test_subsample_layout_counts_and_determinism(trained, method):
    task, folder, _ = trained
    out = [folder / f"pool_{method}_{i}.h5" for i in (0, 1)]
    for path in out:
        subsample(folder / "cgan" / "generator.pt", folder / "dre.pt", path,
                  path.with_suffix(".json"), options={**SUB, "method": method}, seed=3,
                  progress=False)
    a, b = _read(out[0]), _read(out[1])
    for key in a:  # same seed, same content
        np.testing.assert_array_equal(a[key], b[key])
    assert a["images"].dtype == np.uint8 and a["images"].shape[1:] == (1, 8, 8)
    if task == "classification":
        assert np.bincount(a["labels"], minlength=K).tolist() == [SUB["per_class"]] * K
        assert (a["labels"] == a["target"]).all()
    else:
        assert len(a["labels"]) == SUB["label_grid"] * SUB["per_label"]
        assert len(np.unique(a["target"])) == SUB["label_grid"]
        assert 0 <= a["labels"].min() and a["labels"].max() <= 90  # raw units
    stats = json.loads(out[0].with_suffix(".json").read_text())
    if method == "none":
        assert np.isnan(a["density_ratio"]).all() and stats["acceptance_rate_mean"] == 1.0
    else:
        assert (a["density_ratio"] >= 0).all()
        assert all(0 < s["acceptance_rate"] <= 1 for s in stats["per_target"])


@pytest.mark.parametrize("reuse", [True, False])
def test_subsample_burn_in_reuse_switch(trained, reuse):
    task, folder, _ = trained
    path = folder / f"pool_reuse_{reuse}.h5"
    options = {**SUB, "method": "cdrrs", "reuse_burnin": reuse}
    summary = subsample(folder / "cgan" / "generator.pt", folder / "dre.pt", path,
                        path.with_suffix(".json"), options=options, seed=0, progress=False)
    per_target = summary["per_target"]
    assert all(s["reuse_burnin"] == reuse for s in per_target)
    assert summary["rows"] == sum(s["accepted"] for s in per_target) == len(_read(path)["index"])
    if reuse:  # the 20 burn-in proposals are candidates: some of the quota comes from them
        assert sum(s["burnin_accepted"] for s in per_target) > 0
    else:
        assert all(s["burnin_accepted"] == 0 and s["proposed"] > 0 for s in per_target)


@pytest.fixture(scope="module")
def pool(trained):
    task, folder, _ = trained
    path = folder / "pool.h5"
    subsample(folder / "cgan" / "generator.pt", folder / "dre.pt", path,
              path.with_suffix(".json"), options={**SUB, "method": "cdrrs"}, seed=0,
              progress=False)
    return path


def test_filter_modes_write_exactly_count_with_the_right_labels(trained, pool):
    task, folder, _ = trained
    teacher = folder / "teacher.pt"
    modes = ["none", "global"] + (["per_class"] if task == "classification" else [])
    for mode in modes:
        for relabel in (False, True):
            out = folder / f"f_{mode}_{relabel}.h5"
            summary = filter_relabel(pool, teacher, out, fake_count=12, seed=0,
                                     options={"mode": mode, "relabel": relabel, "rho": 0.8,
                                              "burnin": 10})
            got = _read(out)
            assert len(got["labels"]) == 12 == summary["count"]
            if relabel:
                np.testing.assert_array_equal(got["labels"], got["teacher_label"])
            else:
                np.testing.assert_array_equal(got["labels"], got["label_original"])
            if mode != "none":  # everything kept lies below the cutoff(s)
                assert (got["teacher_loss"] < max(summary["cutoffs"])).all()
            if task == "classification" and mode in ("none", "per_class"):
                assert np.bincount(got["label_original"], minlength=K).tolist() == [4, 4, 4]


def test_per_class_filter_drops_the_highest_losses(trained, pool):
    task, folder, _ = trained
    if task != "classification":
        pytest.skip("per-class filtering is for classification")
    out = folder / "f_drop.h5"
    summary = filter_relabel(pool, folder / "teacher.pt", out, fake_count=3, seed=0,
                             options={"mode": "per_class", "rho": 0.5, "burnin": 12})
    kept = _read(out)
    for k, cutoff in enumerate(summary["cutoffs"]):
        assert (kept["teacher_loss"][kept["label_original"] == k] < cutoff).all()


def _expected_rows(pool_data, teacher_path, mode, rho, burnin, count, seed):
    """The kept pool rows, straight from the filter's rules (classification): teacher CE on
    the whole pool at once; per class, cutoff = linear rho-quantile of the class's first
    ``burnin`` losses, keep loss < cutoff, first quota in pool order; global: one cutoff, then
    ``count`` drawn without replacement by default_rng(seed), in pool order."""
    teacher, _ = load_model(teacher_path, "cpu")
    outputs = predict(teacher, torch.from_numpy(pool_data["images"]), 512, torch.device("cpu"))
    labels = pool_data["labels"]
    losses = classification_losses(outputs, torch.from_numpy(labels))
    if mode == "global":
        rows = np.flatnonzero((losses < torch.quantile(losses, rho)).numpy())
        return np.sort(np.random.default_rng(seed).choice(rows, size=count, replace=False))
    rows = []
    for k in range(K):
        members = np.flatnonzero(labels == k)
        cutoff = torch.quantile(losses[members[:burnin]], rho)
        rows.append(members[(losses[members] < cutoff).numpy()][: count // K])
    return np.sort(np.concatenate(rows))


@pytest.mark.parametrize("mode", ["per_class", "global"])
def test_filter_keeps_exactly_the_rows_its_rules_select(trained, pool, mode):
    task, folder, _ = trained
    if task != "classification":
        pytest.skip("the rules are spelled out for classification")
    options = {"mode": mode, "rho": 0.7, "burnin": 8, "batch_size": 5}
    out = folder / f"f_rules_{mode}.h5"
    filter_relabel(pool, folder / "teacher.pt", out, fake_count=9, seed=4, options=options)
    source, got = _read(pool), _read(out)
    rows = _expected_rows(source, folder / "teacher.pt", mode, 0.7, 8, 9, seed=4)
    np.testing.assert_array_equal(got["index"], source["index"][rows])
    np.testing.assert_array_equal(got["images"], source["images"][rows])
    np.testing.assert_array_equal(got["label_original"], source["labels"][rows])
    np.testing.assert_array_equal(got["density_ratio"], source["density_ratio"][rows])


def test_filter_output_does_not_depend_on_the_read_chunk_size(trained, pool, monkeypatch):
    """The images are read in chunks, never whole: a 3-row chunk (the batch size) gives the
    same file as one chunk for the whole pool, datasets and attributes alike."""
    task, folder, _ = trained
    chunk_lengths = []
    real_read_chunks = pool_passes.read_chunks  # the filter's chunked passes over the pool

    def recording_read_chunks(*args, **kwargs):
        for rows, chunk in real_read_chunks(*args, **kwargs):
            chunk_lengths.append(len(rows))
            yield rows, chunk

    def read_array_but_not_images(f, key):
        assert key != "images", "the filter must not read the pool's images whole"
        return read_array(f, key)

    modes = ["none", "global"] + (["per_class"] if task == "classification" else [])
    for mode in modes:
        options = {"mode": mode, "relabel": mode == "global", "rho": 0.8, "burnin": 10,
                   "batch_size": 3}
        whole, small = folder / f"f_whole_{mode}.h5", folder / f"f_small_{mode}.h5"
        summary = filter_relabel(pool, folder / "teacher.pt", whole, fake_count=12, seed=0,
                                 options=options, chunk_rows=10_000)
        assert (summary["rho"] is None) == (mode == "none")  # no rho an unfiltered set never used
        with monkeypatch.context() as patch:
            patch.setattr(pool_passes, "read_chunks", recording_read_chunks)
            patch.setattr(filter_stage, "read_array", read_array_but_not_images)
            filter_relabel(pool, folder / "teacher.pt", small, fake_count=12, seed=0,
                           options=options, chunk_rows=1)  # rounded up to the batch size
        assert set(chunk_lengths) == {3}
        a, b = _read(whole), _read(small)
        assert sorted(a) == sorted(b)
        for key in a:
            assert a[key].dtype == b[key].dtype
            np.testing.assert_array_equal(a[key], b[key])
        with h5py.File(whole, "r") as fa, h5py.File(small, "r") as fb:
            assert dict(fa.attrs) == dict(fb.attrs)


def test_filter_fails_clearly_when_the_pool_is_too_small(trained, pool):
    _, folder, _ = trained
    with pytest.raises(CgankdInputError, match="fewer than"):
        filter_relabel(pool, folder / "teacher.pt", folder / "f_big.h5", fake_count=10_000, seed=0,
                       options={"mode": "none"})
    assert not (folder / "f_big.h5").exists()


def test_quality_of_a_fake_set(trained, pool):
    task, folder, paths = trained
    out = folder / "fakes.h5"
    filter_relabel(pool, folder / "teacher.pt", out, fake_count=12, seed=0,
                   options={"mode": "none"})
    q = write_quality(folder / "q.json", folder / "teacher.pt", paths["test"], out)
    assert q["fid"] >= 0 and json.loads((folder / "q.json").read_text())["fid"] == q["fid"]
    assert ("label_agreement" in q) == (task == "classification")


def test_plain_generation_sees_only_the_options_it_reads():
    opts = {"per_class": 5, "n_burnin": 9, "zeta_mult": 1.0, "label_window": True}
    assert options_for_method(opts, "none") == {"per_class": 5, "method": "none"}
    assert options_for_method(opts, "cdrrs") == {**opts, "method": "cdrrs"}
    assert checked_subsample_options(options_for_method(opts, "none"))["method"] == "none"


# ---- regression label grids (subsample.options.label_grid) ----------------------------------

def test_label_grid_forms_give_the_published_targets(tmp_path):
    from cgankd.conventions import LabelScale
    from cgankd.stages.subsample import grid_labels
    ages, angles = LabelScale(1.0, 60.0), LabelScale(-80.0, 100.0)
    # UTKFace: the integer ages 1..60, not 60 midpoints
    np.testing.assert_allclose(ages.denormalise(grid_labels({"integers": [1, 60]}, ages)),
                               np.arange(1, 61))
    # Steering Angle: a linspace with both endpoints, in label units or the range's ends
    np.testing.assert_allclose(angles.denormalise(grid_labels({"linspace": [-80, 100, 2000]},
                                                              angles)),
                               np.linspace(-80, 100, 2000))
    np.testing.assert_allclose(grid_labels({"linspace": ["min", "max", 5]}, angles),
                               [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(grid_labels(4, angles), [0.125, 0.375, 0.625, 0.875])
    # RC-49: the test split's distinct labels
    labels = np.array([30.0, 4.5, 30.0, 87.3, 4.5], np.float32)
    write_toy_split(tmp_path / "test.h5", task="regression", labels=labels)
    scale = LabelScale(0.0, 90.0)
    got = scale.denormalise(grid_labels("test_labels", scale, tmp_path / "test.h5"))
    np.testing.assert_allclose(got, np.unique(labels), rtol=1e-6)
    with pytest.raises(CgankdInputError, match="test_labels needs the test split file"):
        grid_labels("test_labels", scale)
    with pytest.raises(CgankdInputError, match=r"^subsample\.options\.label_grid: label 0 lies "
                                               r"outside the training label range \[1, 60\]"):
        grid_labels({"integers": [0, 60]}, ages)


@pytest.mark.parametrize("grid, match", [
    (0, r"label_grid: must be an integer >= 1, got 0"),
    (True, r"label_grid: must be an integer n \(midpoints\)"),
    ("test", r"label_grid: must be an integer n \(midpoints\).*or test_labels, got 'test'"),
    ({"integers": [60, 1]}, r"label_grid\.integers: hi 1 is below lo 60"),
    ({"integers": [1.5, 60]}, r"label_grid\.integers: must be an integer, got 1\.5"),
    ({"integers": [1]}, r"label_grid\.integers: must be \[lo, hi\]"),
    ({"linspace": [0, 1]}, r"label_grid\.linspace: must be \[lo, hi, n\]"),
    ({"linspace": [0, 1, 1]}, r"label_grid\.linspace n: must be an integer >= 2"),
    ({"linspace": [2, 1, 5]}, r"label_grid\.linspace: hi 1 must exceed lo 2"),
    ({"linspace": ["max", 1, 5]}, r"label_grid\.linspace \(min end, or 'min'\)"),
    ({"grid": 5}, r"label_grid: unknown form 'grid'"),
    ({"integers": [1, 2], "linspace": [1, 2, 3]}, r"label_grid: must be an integer n"),
])
def test_label_grid_is_checked_when_planning(grid, match):
    with pytest.raises(CgankdInputError, match=match):
        checked_subsample_options({"label_grid": grid})


def test_pool_supply_check_counts_the_grid_labels():
    from cgankd.stage_options.fake import check_pool_supplies
    opts = checked_subsample_options({"label_grid": {"integers": [1, 60]}, "per_label": 10})
    check_pool_supplies(600, opts, "regression", None)
    with pytest.raises(CgankdInputError, match=r"label_grid x per_label = 60 labels x 10 = 600"):
        check_pool_supplies(601, opts, "regression", None)
    opts = checked_subsample_options({"label_grid": {"linspace": ["min", "max", 2000]},
                                      "per_label": 1})
    with pytest.raises(CgankdInputError, match="= 2000 labels x 1 = 2000"):
        check_pool_supplies(2001, opts, "regression", None)
    # the test split's labels are unknown when planning: no check then
    check_pool_supplies(10 ** 9, checked_subsample_options({"label_grid": "test_labels"}),
                        "regression", None)


def test_subsample_on_the_test_labels_grid(trained):
    task, folder, paths = trained
    if task != "regression":
        pytest.skip("label grids are for regression")
    out = folder / "pool_test_labels.h5"
    subsample(folder / "cgan" / "generator.pt", None, out, out.with_suffix(".json"),
              options={**SUB, "method": "none", "label_grid": "test_labels"}, seed=3,
              progress=False, test_labels=paths["test"])
    a = _read(out)
    test_labels = np.unique(read_split(paths["test"]).labels)
    np.testing.assert_allclose(np.unique(a["target"]), test_labels, rtol=1e-5)
    assert len(a["labels"]) == len(test_labels) * SUB["per_label"]


def test_every_file_the_stages_write_is_a_declared_kind(trained, pool, tmp_path):
    """cgankd.formats declares each kind these stages write: every .h5 / .pt file carries a
    kind's tag (or, a resume checkpoint, its key) and holds what the kind declares."""
    task, folder, paths = trained
    labels = np.arange(6) % K if task == "classification" else np.linspace(0, 90, 6)
    generate_to_h5(folder / "cgan" / "generator.pt", labels, tmp_path / "generated.h5",
                   device="cpu", progress=False)
    filter_relabel(pool, folder / "teacher.pt", tmp_path / "fakes.h5", fake_count=12, seed=0,
                   options={"mode": "none"})
    Resume(tmp_path / "loop.resume.pt", {"config": "x"}, desc="t", every=1,
           seconds=None).save({"step": 1}, [])
    train_quality_extractor(paths["train"], paths["val"], tmp_path / "extractor.pt",
                            tmp_path / "extractor.jsonl", seed=0, progress=False,
                            options={"extractor_width": 4, "extractor_recipe": {
                                "steps": 2, "batch_size": 16, "eval_every": 2}})
    seen = set()
    for path in sorted([*folder.rglob("*.h5"), *folder.rglob("*.pt"), *tmp_path.iterdir()]):
        if path.suffix == ".h5":
            with open_h5(path) as f:
                kind = formats.h5_kind_of(decode_attrs(f.attrs).get("format"), set(), {})
                assert kind is not None, f"{path}: no declared tag"
                check_h5(f, kind)  # every declared column, dtype, rank and attribute
        elif path.suffix == ".pt":
            blob = torch.load(path, weights_only=True)
            kind = formats.torch_kind_of(blob)
            assert kind is not None, f"{path}: no declared tag or resume key"
            check_fields(blob, kind, path)
        else:
            continue
        seen.add(kind.name)
    assert seen == {k.name for k in (*formats.H5_KINDS, *formats.TORCH_KINDS)}
