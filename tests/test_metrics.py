"""Sample-quality metrics: Fréchet distance, streaming embedding, FID / Intra-FID, label scores."""

import json

import h5py
import numpy as np
import pytest
import torch

from cgankd.errors import CgankdInputError
from cgankd.metrics import (embed, embed_with_outputs, feature_stats, frechet_distance,
                            sample_quality)
from cgankd.nets import build_net
from cgankd.stages.fake_quality import run as write_quality
from cgankd.train.model_file import load_model, save_model
from toy_data import LABEL_MAX, LABEL_MIN, NUM_CLASSES, write_fake_set, write_toy_split


def noise_images(n: int, seed: int, low: int = 0, high: int = 128) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, (n, 1, 8, 8), dtype=np.uint8)


def random_psd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


# ---------------------------------------------------------------- Fréchet distance

def test_frechet_distance_zero_for_identical_stats_and_symmetric():
    mu1, s1 = np.arange(5.0), random_psd(5, 0)
    mu2, s2 = np.ones(5), random_psd(5, 1)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert d12 > 0 and d12 == pytest.approx(d21, rel=1e-8)


@pytest.mark.parametrize("m1,v1,m2,v2", [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.3),
                                         (3.0, 0.0, 1.0, 4.0)])
def test_frechet_distance_one_dimensional_closed_form(m1, v1, m2, v2):
    expected = (m1 - m2) ** 2 + v1 + v2 - 2 * np.sqrt(v1 * v2)
    got = frechet_distance(np.array([m1]), np.array([[v1]]), np.array([m2]), np.array([[v2]]))
    assert got == pytest.approx(expected, abs=1e-5)


def test_frechet_distance_diagonal_covariances_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2 + v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_finite_for_singular_covariances():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(4, 1)), rng.normal(size=(4, 2))
    rank1, rank2 = u @ u.T, v @ v.T
    for s1, s2 in [(rank1, rank2), (rank1, rank1), (np.zeros((4, 4)), rank2),
                   (np.zeros((4, 4)), np.zeros((4, 4)))]:
        d = frechet_distance(np.zeros(4), s1, np.ones(4), s2)
        assert np.isfinite(d) and d >= 4.0 - 1e-3  # |mu1 - mu2|^2 = 4 is a lower bound
    # fewer samples than dimensions: the usual rank-deficient case of a small class
    f1, f2 = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    assert np.isfinite(frechet_distance(*feature_stats(f1), *feature_stats(f2)))


def test_constant_feature_adds_nothing_to_the_distance():
    # a dead ReLU unit makes both covariances singular; the eps offset must not bias the result
    rng = np.random.default_rng(4)
    f1, f2 = rng.normal(size=(200, 3)), rng.normal(0.3, 1.2, size=(200, 3))
    live = frechet_distance(*feature_stats(f1), *feature_stats(f2))
    dead = np.zeros((200, 1))
    with_dead = frechet_distance(*feature_stats(np.hstack([f1, dead])),
                                 *feature_stats(np.hstack([f2, dead])))
    assert with_dead == pytest.approx(live, rel=1e-4)
    same = feature_stats(np.hstack([f1, dead]))
    assert frechet_distance(*same, *same) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_feature_stats_are_mean_and_covariance():
    feats = np.random.default_rng(4).normal(size=(50, 3)).astype(np.float32)
    mu, sigma = feature_stats(feats)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, feats.astype(np.float64).mean(0))
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64).T))
    with pytest.raises(ValueError):
        feature_stats(feats[:1])


# ---------------------------------------------------------------- nets and files

def tiny_net(num_outputs: int, seed: int = 0, calibration: np.ndarray | None = None,
             spread: float = 1.0, centre: float = 0.0) -> torch.nn.Module:
    """An untrained tiny cnn; with ``calibration`` images, its head is rescaled so that each
    output has mean ``centre`` and std ``spread`` on them (an untrained head's outputs are
    nearly constant: one class wins everywhere, one regression value everywhere)."""
    torch.manual_seed(seed)
    net = build_net("cnn", num_outputs, 1, width=4, blocks=2)
    if calibration is not None:
        raw = torch.from_numpy(embed_with_outputs(net, calibration, 100, "cpu")[1])
        mean, std = raw.mean(0), raw.std(0)
        with torch.no_grad():
            net.head.weight.mul_((spread / std)[:, None])
            net.head.bias.copy_(centre + spread * (net.head.bias - mean) / std)
    return net


def save_metric_net(path, net, task: str) -> str:
    meta = {"role": "metric", "task": task, "net": "cnn", "net_kwargs": {"width": 4, "blocks": 2},
            "num_outputs": net.num_outputs, "in_channels": 1, "resolution": 8,
            "num_classes": net.num_outputs if task == "classification" else None}
    if task == "regression":
        meta.update(label_min=LABEL_MIN, label_max=LABEL_MAX)
    save_model(path, {k: v.clone() for k, v in net.state_dict().items()}, meta)
    return str(path)


def write_real(path, images: np.ndarray, labels: np.ndarray, task: str) -> str:
    return str(write_toy_split(path, task=task, images=images, labels=labels))


def write_fake(path, images: np.ndarray, labels: np.ndarray) -> str:
    # a column the readers do not know (weights) is ignored
    return str(write_fake_set(path, images, labels, weights=np.ones(len(labels), np.float32)))


@pytest.fixture
def cls_files(tmp_path):
    images = noise_images(300, 6)
    model = save_metric_net(tmp_path / "metric_cls.pt", tiny_net(NUM_CLASSES, 0, images),
                            "classification")
    labels = np.random.default_rng(5).integers(0, NUM_CLASSES, 300).astype(np.int64)
    real = write_real(tmp_path / "real_cls.h5", images, labels, "classification")
    return tmp_path, model, real


def test_embed_streams_from_h5_and_matches_in_memory(tmp_path):
    net = tiny_net(NUM_CLASSES).train()
    images = noise_images(23, 7)
    write_fake(tmp_path / "f.h5", images, np.zeros(23, np.int64))
    whole = embed(net, images, 100, "cpu")
    assert whole.shape == (23, net.embed_dim)
    assert net.training  # the caller's mode is restored
    with h5py.File(tmp_path / "f.h5", "r") as f:
        streamed, outs = embed_with_outputs(net, f["images"], 5, "cpu")
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-6)
    expected = net.eval()(torch.from_numpy(images).float() / 127.5 - 1).detach().numpy()
    np.testing.assert_allclose(outs, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- classification

def test_fid_small_for_same_distribution_large_for_shifted(cls_files):
    folder, model, real = cls_files
    labels = np.random.default_rng(8).integers(0, NUM_CLASSES, 300).astype(np.int64)
    same = write_fake(folder / "same.h5", noise_images(300, 9), labels)
    shifted = write_fake(folder / "shifted.h5", noise_images(300, 9, 90, 218), labels)
    q_same = sample_quality(model, real, same, device="cpu", batch_size=128)
    q_shift = sample_quality(model, real, shifted, device="cpu", batch_size=128)
    assert q_same["fid"] * 20 < q_shift["fid"]
    assert q_same["intra_fid"] * 5 < q_shift["intra_fid"]
    assert q_same["n_real"] == q_same["n_fake"] == 300
    assert q_same["feature_dim"] == 8


def test_intra_fid_per_class_and_label_agreement(cls_files):
    folder, model, real = cls_files
    images = noise_images(240, 10)
    net, _ = load_model(model)
    _, outs = embed_with_outputs(net, images, 64, "cpu")
    own = outs.argmax(1).astype(np.int64)
    assert len(np.unique(own)) > 1
    q = sample_quality(model, real, write_fake(folder / "own.h5", images, own), device="cpu")
    assert q["label_agreement"] == pytest.approx(100.0)
    assert q["label_agreement_shuffled"] < 90.0  # the chance reference beside it
    assert [row["class"] for row in q["per_class"]] == [0, 1, 2]
    assert [row["name"] for row in q["per_class"]] == ["a", "b", "c"]
    assert [row["n_fake"] for row in q["per_class"]] == np.bincount(own, minlength=3).tolist()
    computed = [row["fid"] for row in q["per_class"] if row["fid"] is not None]
    assert q["intra_fid"] == pytest.approx(np.mean(computed))
    assert q["intra_fid_classes"] == len(computed)

    wrong = write_fake(folder / "wrong.h5", images, (own + 1) % NUM_CLASSES)
    assert sample_quality(model, real, wrong, device="cpu")["label_agreement"] == 0.0
    shuffled = np.random.default_rng(11).permutation(own)
    q_shuffled = sample_quality(model, real, write_fake(folder / "shuf.h5", images, shuffled),
                                device="cpu")
    assert q_shuffled["label_agreement"] < 90.0


def test_classes_with_too_few_samples_are_skipped(cls_files):
    folder, model, real = cls_files
    labels = np.array([0] * 50 + [1] * 50 + [2] * 3, np.int64)
    fake = write_fake(folder / "few.h5", noise_images(103, 12), labels)
    q = sample_quality(model, real, fake, device="cpu", min_per_class=5)
    fids = [row["fid"] for row in q["per_class"]]
    assert fids[0] is not None and fids[1] is not None and fids[2] is None
    assert q["per_class"][2]["n_fake"] == 3
    assert q["intra_fid"] == pytest.approx((fids[0] + fids[1]) / 2)
    assert q["intra_fid_classes"] == 2


def test_bad_inputs_fail_with_one_clear_line(cls_files):
    folder, model, real = cls_files
    out_of_range = write_fake(folder / "oor.h5", noise_images(10, 13), np.full(10, 7, np.int64))
    with pytest.raises(CgankdInputError, match="outside"):
        sample_quality(model, real, out_of_range, device="cpu")
    rgb = np.zeros((10, 3, 8, 8), np.uint8)
    with pytest.raises(CgankdInputError, match="channels"):
        sample_quality(model, real, write_fake(folder / "rgb.h5", rgb, np.zeros(10, np.int64)),
                       device="cpu")
    with pytest.raises(CgankdInputError, match="not found"):
        sample_quality(model, real, folder / "missing.h5", device="cpu")
    with pytest.raises(CgankdInputError, match="min_per_class"):
        sample_quality(model, real, real, device="cpu", min_per_class=1)


def test_write_quality_writes_json(cls_files):
    folder, model, real = cls_files
    fake = write_fake(folder / "f.h5", noise_images(60, 14), np.zeros(60, np.int64))
    out = folder / "q" / "quality.json"
    result = write_quality(out, model, real, fake, device="cpu")
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["task"] == "classification" and result["fid"] >= 0


# ---------------------------------------------------------------- regression

@pytest.fixture
def reg_files(tmp_path):
    calibration = noise_images(200, 15)
    # normalised predictions spread over (0, 1): they differ between images
    net = tiny_net(1, seed=1, calibration=calibration, spread=0.2, centre=0.5)
    model = save_metric_net(tmp_path / "metric_reg.pt", net, "regression")
    labels = np.random.default_rng(16).uniform(LABEL_MIN, LABEL_MAX, 200).astype(np.float32)
    real = write_real(tmp_path / "real_reg.h5", calibration, labels, "regression")
    return tmp_path, model, real


def hand_predictions(model: str, images: np.ndarray) -> np.ndarray:
    net, _ = load_model(model)
    with torch.no_grad():
        out = net(torch.from_numpy(images).float() / 127.5 - 1).reshape(-1).double().numpy()
    return np.clip(out, 0, 1) * (LABEL_MAX - LABEL_MIN) + LABEL_MIN


def test_regression_label_score_matches_hand_computation(reg_files):
    folder, model, real = reg_files
    images = noise_images(150, 17)
    pred = hand_predictions(model, images)
    assert pred.std() > 3.0  # predictions spread: shuffling labels must matter
    labels = np.random.default_rng(18).uniform(LABEL_MIN, LABEL_MAX, 150).astype(np.float32)
    q = sample_quality(model, real, write_fake(folder / "r.h5", images, labels), device="cpu")
    err = np.abs(pred - labels.astype(np.float64))
    assert q["label_score"] == pytest.approx(err.mean(), rel=1e-4)
    assert q["label_score_std"] == pytest.approx(err.std(), rel=1e-3)
    assert q["label_unit"] == "degrees"

    own = write_fake(folder / "own.h5", images, pred.astype(np.float32))
    shuffled = np.random.default_rng(19).permutation(pred).astype(np.float32)
    q_own = sample_quality(model, real, own, device="cpu")
    q_shuf = sample_quality(model, real, write_fake(folder / "s.h5", images, shuffled),
                            device="cpu")
    assert q_own["label_score"] < 1e-3
    assert q_shuf["label_score"] > 2.0
    assert q_own["label_score_shuffled"] > 2.0  # the report's own shuffled reference


def test_regression_windows_cover_the_label_range(reg_files):
    folder, model, real = reg_files
    labels = np.random.default_rng(20).uniform(LABEL_MIN, LABEL_MAX / 2, 150).astype(np.float32)
    fake = write_fake(folder / "w.h5", noise_images(150, 21), labels)
    q = sample_quality(model, real, fake, device="cpu", n_windows=4, min_per_class=10)
    windows = q["windows"]
    assert len(windows) == 4 == q["n_windows"]
    assert windows[0]["low"] == LABEL_MIN and windows[-1]["high"] == LABEL_MAX
    assert all(a["high"] == pytest.approx(b["low"]) for a, b in zip(windows, windows[1:]))
    assert sum(w["n_real"] for w in windows) == 200
    assert sum(w["n_fake"] for w in windows) == 150
    # fakes only in the lower half of the range: the upper windows have no FID
    assert windows[0]["fid"] is not None and windows[1]["fid"] is not None
    assert windows[2]["fid"] is None and windows[3]["fid"] is None
    assert q["window_fid_mean"] == pytest.approx((windows[0]["fid"] + windows[1]["fid"]) / 2)
    assert q["fid"] > 0 and q["metric_net_mae_real"] > 0



# ---------------------------------------------------------------- manifold scores, references

def test_manifold_scores_overall_and_per_class(cls_files):
    folder, model, real = cls_files
    labels = np.array([0] * 100 + [1] * 100 + [2] * 4, np.int64)
    fake = write_fake(folder / "m.h5", noise_images(204, 22), labels)
    q = sample_quality(model, real, fake, device="cpu", pr_k=3, dc_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert 0 <= q[key] and (key == "density" or q[key] <= 1)
        assert q["per_class"][0][key] is not None and q["per_class"][1][key] is not None
        assert q["per_class"][2][key] is None  # 4 fakes: fewer than dc_k + 1
        both = [q["per_class"][0][key], q["per_class"][1][key]]
        assert q["group_mean"][key] == pytest.approx(np.mean(both))
    assert q["per_class"][2]["fid"] is not None  # FID needs only min_per_class = 2
    assert q["options"]["pr_k"] == 3 and "reference" not in q and "matched" not in q


def test_reference_and_size_matched_values(cls_files):
    folder, model, real = cls_files
    rng = np.random.default_rng(23)
    val = write_real(folder / "val.h5", noise_images(60, 24),
                     np.repeat(np.arange(NUM_CLASSES), 20).astype(np.int64), "classification")
    big = write_fake(folder / "big.h5", noise_images(300, 25),
                     rng.integers(0, NUM_CLASSES, 300).astype(np.int64))
    q = sample_quality(model, real, big, reference_h5=val, device="cpu", matched_draws=4)
    ref, matched = q["reference"], q["matched"]
    assert ref["n_fake"] == 60 and ref["real_h5"] == val
    assert [row["n_fake"] for row in ref["per_class"]] == [20, 20, 20]
    assert matched["n_fake"] == 60 and matched["draws"] == 4
    # the val images and the fakes are draws of one distribution. Coverage depends on the
    # sample count: the full fake set (5x the val count) covers far more real balls than the
    # reference does, the size-matched subsets about as many
    assert q["coverage"] > ref["coverage"] + 0.2
    assert matched["coverage"] == pytest.approx(ref["coverage"], abs=0.15)
    assert matched["fid"] > q["fid"]  # FID's small-sample bias: why the ratio uses matched
    assert set(matched["std"]) == {"fid", "intra_fid", "precision", "recall", "density",
                                   "coverage", "label_agreement"}
    net, _ = load_model(model)
    val_images = noise_images(60, 24)
    own = embed_with_outputs(net, val_images, 64, "cpu")[1].argmax(1)
    # the reference's label agreement is the metric net's accuracy on the val images
    assert ref["label_agreement"] == pytest.approx(
        100.0 * np.mean(own == np.repeat(np.arange(NUM_CLASSES), 20)))


def test_a_fake_set_equal_to_the_reference_matches_it_exactly(cls_files):
    folder, model, real = cls_files
    images, labels = noise_images(45, 26), np.repeat(np.arange(NUM_CLASSES), 15)
    val = write_real(folder / "val.h5", images, labels.astype(np.int64), "classification")
    same = write_fake(folder / "same.h5", images, labels.astype(np.int64))
    q = sample_quality(model, real, same, reference_h5=val, device="cpu")
    assert q["matched"]["draws"] == 1  # the subsets would all be the whole set
    for key in ("fid", "intra_fid", "precision", "recall", "density", "coverage",
                "label_agreement"):
        assert q["matched"][key] == pytest.approx(q["reference"][key]) == pytest.approx(q[key])


def test_regression_reference_has_window_values(reg_files):
    folder, model, real = reg_files
    rng = np.random.default_rng(27)
    val = write_real(folder / "val.h5", noise_images(80, 28),
                     rng.uniform(LABEL_MIN, LABEL_MAX, 80).astype(np.float32), "regression")
    fake = write_fake(folder / "f.h5", noise_images(200, 29),
                      rng.uniform(LABEL_MIN, LABEL_MAX, 200).astype(np.float32))
    q = sample_quality(model, real, fake, reference_h5=val, device="cpu", n_windows=2)
    ref = q["reference"]
    assert sum(w["n_fake"] for w in ref["windows"]) == 80
    assert q["matched"]["n_fake"] == 80  # each window drawn down to the reference's count
    assert ref["window_fid_mean"] is not None and ref["label_score"] > 0
    assert q["matched"]["label_score"] is not None and q["matched"]["coverage"] is not None


@pytest.mark.parametrize("options,match", [
    ({"pr_kk": 3}, "quality.options.pr_kk"),
    ({"dc_k": 0}, "quality.options.dc_k"),
    ({"matched_draws": 1.5}, "quality.options.matched_draws"),
    ({"n_windows": 0}, "quality.options.n_windows")])
def test_bad_options_name_the_key(options, match):
    from cgankd.metrics import checked_quality_options
    with pytest.raises(CgankdInputError, match=match):
        checked_quality_options(options)


def test_reference_of_another_image_size_fails_clearly(cls_files):
    folder, model, real = cls_files
    small = np.zeros((12, 1, 6, 6), np.uint8)
    val = write_real(folder / "val6.h5", small, np.zeros(12, np.int64), "classification")
    fake = write_fake(folder / "f.h5", noise_images(30, 30), np.zeros(30, np.int64))
    with pytest.raises(CgankdInputError, match="val6.h5: images are"):
        sample_quality(model, real, fake, reference_h5=val, device="cpu")
