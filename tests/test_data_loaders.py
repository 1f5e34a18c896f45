"""Every registered dataset loader, on small files written here in the exact on-disk format.

Each test runs the real ``prepare_data`` stage (or ``load_raw`` where the raw parts matter) and
reads the three split files back. Bad input must fail with one ``CgankdInputError`` line naming
the file, key or value, and leave the output folder empty (no split file, no temp file).
"""

import pickle
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import default_data_cfg, make_data_cfg, split_outputs

from cgankd.data import DATASETS, digits
from cgankd.data.prepare import load_raw
from cgankd.data.resize import resize_images
from cgankd.errors import CgankdInputError
from cgankd.h5io import read_split
from cgankd.stages.prepare_data import run as prepare_data

TEST_OFFSET = 10**7  # ids of the authors' separate test tables (authors_h5, user)


# ----------------------------------------------------------------------------------- helpers

def run_prepare(cfg: dict, out_dir: Path) -> dict:
    counts = prepare_data(cfg, split_outputs(out_dir), source_hash="test-hash")
    splits = {name: read_split(path) for name, path in split_outputs(out_dir).items()}
    assert counts == {name: len(s) for name, s in splits.items()}
    assert sorted(p.name for p in out_dir.iterdir()) == ["test.h5", "train.h5", "val.h5"]
    for name, s in splits.items():
        assert s.images.dtype == np.uint8 and s.images.ndim == 4
        assert s.index.dtype == np.int64
        assert s.attrs["split"] == name and s.attrs["num_samples"] == len(s)
        assert s.attrs["dataset"] == cfg["dataset"] and s.attrs["source_hash"] == "test-hash"
        assert s.attrs["resolution"] == s.images.shape[-1] == s.images.shape[-2]
        assert s.attrs["channels"] == s.images.shape[1]
        if s.task == "classification":
            assert s.labels.dtype == np.int64
            assert s.attrs["class_counts"] == np.bincount(
                s.labels, minlength=s.attrs["num_classes"]).tolist()
        else:
            assert s.labels.dtype == np.float32
    ids = [set(s.index.tolist()) for s in splits.values()]
    assert sum(map(len, ids)) == len(set().union(*ids)) == sum(map(len, splits.values())), \
        "ids must be unique within and disjoint across splits"
    return splits


def expect_input_error(cfg: dict, out_dir: Path, *needles) -> str:
    """prepare_data must fail with one line naming every needle and write nothing."""
    with pytest.raises(CgankdInputError) as excinfo:
        prepare_data(cfg, split_outputs(out_dir))
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert str(needle) in msg, f"{needle!r} not in {msg!r}"
    assert list(out_dir.iterdir()) == [], "a failed prepare_data left files behind"
    return msg


def write_h5_plain(path: Path, **arrays) -> Path:
    """An HDF5 file as the authors' scripts write it: plain datasets, no attributes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def coded_images(n: int, start: int = 0, size: int = 16, channels: int = 3) -> np.ndarray:
    """uint8 (n, C, size, size) images whose pixels encode their row: image i is filled with
    (start + i) % 256 in channel 0 and (start + i) // 256 in the others."""
    codes = start + np.arange(n)
    out = np.empty((n, channels, size, size), np.uint8)
    out[:, 0] = (codes % 256)[:, None, None]
    out[:, 1:] = (codes // 256)[:, None, None, None]
    return out


def decode(images: np.ndarray, start: int = 0) -> np.ndarray:
    return images[:, 0, 0, 0].astype(np.int64) + 256 * images[:, 1, 0, 0].astype(np.int64) - start


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_every_registered_dataset_is_covered():
    assert DATASETS.names() == sorted(["digits", "digits_angle", "cifar10", "cifar100",
                                       "tinyimagenet", "imagenet100", "rc49", "utkface",
                                       "steering_angle", "h5", "imagefolder"])


# ------------------------------------------------------------------------------------ digits

@pytest.fixture(scope="module")
def digits_default(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits_default")
    return run_prepare(default_data_cfg(), out)


def test_digits_default_split_sizes_and_classes(digits_default):
    train, val, test = (digits_default[k] for k in ("train", "val", "test"))
    cfg = default_data_cfg()
    assert np.bincount(train.labels, minlength=10).tolist() == [cfg["train_per_class"]] * 10
    assert np.bincount(val.labels, minlength=10).tolist() == [cfg["val_per_class"]] * 10
    assert cfg["train_per_class"] == 50  # the default's regime (README: how it was chosen)
    test_counts = np.bincount(test.labels, minlength=10)
    assert (test_counts >= 100).all()  # ~60 % of ~180 per class
    assert abs(len(test) - 0.6 * 1797) <= 10
    for s in (train, val, test):
        assert s.attrs["task"] == "classification" and s.attrs["num_classes"] == 10
        assert s.attrs["class_names"] == [str(k) for k in range(10)]
        assert s.images.shape[1:] == (1, 16, 16)
        assert s.attrs["seed"] == 0
    assert set(train.index) | set(val.index) | set(test.index) <= set(range(1797))


def test_digits_images_are_the_sklearn_digits_resized(digits_default):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    source = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]
    for s in digits_default.values():
        np.testing.assert_array_equal(s.labels, bunch.target[s.index])
        np.testing.assert_array_equal(s.images, resize_images(source[s.index], 16))
        assert s.images.max() > 200 and s.images.min() == 0


def test_digits_are_deterministic_and_seeded(digits_default, tmp_path):
    (tmp_path / "same").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "r32").mkdir()
    again = run_prepare(default_data_cfg(), tmp_path / "same")
    for name, s in digits_default.items():
        np.testing.assert_array_equal(again[name].index, s.index)
        np.testing.assert_array_equal(again[name].images, s.images)
        assert again[name].attrs == s.attrs
    other = run_prepare(default_data_cfg(seed=1), tmp_path / "other")
    for name in ("train", "val", "test"):
        assert set(other[name].index) != set(digits_default[name].index)
    assert other["train"].attrs["config_hash"] != digits_default["train"].attrs["config_hash"]
    big = run_prepare(default_data_cfg(resolution=32), tmp_path / "r32")
    for name, s in big.items():
        assert s.images.shape[1:] == (1, 32, 32) and s.attrs["resolution"] == 32
        np.testing.assert_array_equal(s.index, digits_default[name].index)  # same draw


def test_digits_channels_option_makes_rgb(out_dir):
    splits = run_prepare(default_data_cfg(channels=3), out_dir)
    img = splits["val"].images
    assert img.shape[1] == 3
    np.testing.assert_array_equal(img[:, 0], img[:, 2])


# ------------------------------------------------------------------------------ digits_angle

ANGLE_OPTIONS = {"n_train_angles": 6, "images_per_angle": 5, "val_per_angle": 2, "n_test": 60}


def test_digits_angle_splits(out_dir):
    cfg = make_data_cfg(dataset="digits_angle", options=ANGLE_OPTIONS)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (30, 12, 60)
    for s in splits.values():
        assert s.task == "regression" and s.images.shape[1:] == (1, 16, 16)
        assert ((s.labels >= 0) & (s.labels < 90)).all()
        assert (s.attrs["label_min"], s.attrs["label_max"]) == (0.0, 90.0)
        assert s.attrs["label_unit"] == "degrees"
    train_angles = np.unique(train.labels)
    assert len(train_angles) == 6 == train.attrs["distinct_labels"]
    assert np.bincount(np.searchsorted(train_angles, train.labels)).tolist() == [5] * 6
    assert np.isin(val.labels, train_angles).all()
    unseen = ~np.isin(test.labels, train_angles)
    assert unseen.sum() > 50  # continuous test angles: almost none equals a training angle
    assert test.labels.min() < 15 and test.labels.max() > 75


def test_digits_angle_test_digits_are_never_training_digits(monkeypatch):
    """Replace the digits by images coding their source row and the rotation by the identity:
    the split's images then reveal which source digit each sample came from."""
    n = 1797
    coded = coded_images(n, size=8, channels=2)  # the source row, in two channels
    monkeypatch.setattr(digits, "_sklearn_digits", lambda: (coded, np.zeros(n, np.int64)))
    monkeypatch.setattr(digits, "rotate", lambda images, angles: images.copy())
    raw = load_raw(make_data_cfg(dataset="digits_angle", options=ANGLE_OPTIONS))
    src = {k: set(decode(getattr(raw, k).images).tolist()) for k in ("train", "val", "test")}
    assert src["test"] and src["train"] and src["val"]
    assert not (src["train"] | src["val"]) & src["test"]
    # within one training angle, train and val use distinct source digits
    for angle in np.unique(raw.train.labels):
        rows_t = decode(raw.train.images[raw.train.labels == angle])
        rows_v = decode(raw.val.images[raw.val.labels == angle])
        assert len(set(rows_t) | set(rows_v)) == len(rows_t) + len(rows_v)


def test_digits_angle_rotation_is_a_real_rotation():
    images, _ = digits._sklearn_digits()
    x = images[:4]
    r0 = digits.rotate(x, np.zeros(4))
    r90 = digits.rotate(x, np.full(4, 90.0))
    r45 = digits.rotate(x, np.full(4, 45.0))
    diff = np.abs(np.rot90(r0, k=1, axes=(2, 3)).astype(int) - r90.astype(int))
    assert diff.max() <= 2  # counter-clockwise quarter turn, pixel centres map onto centres
    assert np.abs(r0.astype(int) - r90.astype(int)).mean() > 5
    assert np.abs(r45.astype(int) - r0.astype(int)).mean() > 5
    # ink is conserved up to interpolation: nothing is clipped at the canvas corners
    assert abs(r45.astype(float).sum() / r0.astype(float).sum() - 1) < 0.05


def test_digits_angle_rejects_classification_options(out_dir):
    cfg = make_data_cfg(dataset="digits_angle", options=ANGLE_OPTIONS, train_per_class=3)
    expect_input_error(cfg, out_dir, "data.train_per_class")


# ------------------------------------------------------------------------------------ CIFAR

class _Py2Str(bytes):
    """A Python 2 ``str``: the CIFAR archives were pickled by Python 2, so their keys and
    names are (SHORT_)BINSTRING opcodes, which Python 3 reads as str with encoding='latin1'
    and as bytes with encoding='bytes'."""


class _Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2str(self, obj):
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2str


def _py2(obj):
    if isinstance(obj, str):
        return _Py2Str(obj.encode("latin1"))
    if isinstance(obj, dict):
        return {_py2(k): _py2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_py2(v) for v in obj]
    return obj


def _dump_py2(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(_py2(obj))


def _batch(images: np.ndarray, labels: list[int], label_key: str, name: str,
           prefix: str) -> dict:
    """One batch dict as in the archives: data (N, 3072) uint8 = R, G, B planes, row-major."""
    return {
        "batch_label": name,
        label_key: labels,
        "data": images.reshape(len(images), 3 * 32 * 32),
        "filenames": [f"{prefix}_{i}.png" for i in range(len(labels))],
    }


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


def write_cifar10(root: Path, per_batch_per_class: int = 1, test_per_class: int = 3):
    rng = np.random.default_rng(10)
    folder = root / "cifar-10-batches-py"
    train_imgs, train_labels = [], []
    for b in range(1, 6):
        labels = [k for k in range(10) for _ in range(per_batch_per_class)]
        rng.shuffle(labels)
        imgs = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
        _dump_py2(folder / f"data_batch_{b}",
                  _batch(imgs, labels, "labels", f"training batch {b} of 5", f"b{b}"))
        train_imgs.append(imgs)
        train_labels += labels
    test_labels = [k for k in range(10) for _ in range(test_per_class)]
    test_imgs = rng.integers(0, 256, (len(test_labels), 3, 32, 32), dtype=np.uint8)
    _dump_py2(folder / "test_batch",
              _batch(test_imgs, test_labels, "labels", "testing batch 1 of 1", "t"))
    _dump_py2(folder / "batches.meta", {"num_cases_per_batch": 10 * per_batch_per_class,
                                        "label_names": CIFAR10_NAMES, "num_vis": 3072})
    return (np.concatenate(train_imgs), np.asarray(train_labels), test_imgs,
            np.asarray(test_labels))


def write_cifar100(root: Path, train_per_class: int = 3):
    rng = np.random.default_rng(100)
    folder = root / "cifar-100-python"
    names = [f"class_{k:02d}" for k in range(100)]
    labels = [k for _ in range(train_per_class) for k in range(100)]
    imgs = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    train = _batch(imgs, labels, "fine_labels", "training batch 1 of 1", "tr")
    train["coarse_labels"] = [k // 5 for k in labels]
    _dump_py2(folder / "train", train)
    test_labels = list(range(100))[::-1]
    test_imgs = rng.integers(0, 256, (100, 3, 32, 32), dtype=np.uint8)
    test = _batch(test_imgs, test_labels, "fine_labels", "testing batch 1 of 1", "te")
    test["coarse_labels"] = [k // 5 for k in test_labels]
    _dump_py2(folder / "test", test)
    _dump_py2(folder / "meta", {"fine_label_names": names,
                                "coarse_label_names": [f"super_{k}" for k in range(20)]})
    return imgs, np.asarray(labels), test_imgs, np.asarray(test_labels), names


def test_cifar_pickles_match_the_archive_format(tmp_path):
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert as_bytes[b"data"].shape == (10, 3072) and as_bytes[b"data"].dtype == np.uint8
    assert isinstance(as_bytes[b"labels"], list) and isinstance(as_bytes[b"filenames"][0], bytes)
    with open(tmp_path / "cifar-10-batches-py" / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == CIFAR10_NAMES


def test_cifar10(tmp_path, out_dir):
    train_imgs, train_labels, test_imgs, test_labels = write_cifar10(tmp_path / "cifar")
    cfg = make_data_cfg(dataset="cifar10", root=str(tmp_path / "cifar"), resolution=32,
                        val_per_class=1)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (40, 10, 30)
    assert train.attrs["class_names"] == CIFAR10_NAMES and train.attrs["num_classes"] == 10
    for s in (train, val):  # pixel-exact, channel order kept (R, G, B planes -> NCHW)
        assert s.index.max() < len(train_labels)
        np.testing.assert_array_equal(s.images, train_imgs[s.index])
        np.testing.assert_array_equal(s.labels, train_labels[s.index])
    rows = test.index - 10**6
    assert sorted(rows) == list(range(30))  # test is exactly test_batch
    np.testing.assert_array_equal(test.images, test_imgs[rows])
    np.testing.assert_array_equal(test.labels, test_labels[rows])

    (tmp_path / "sub").mkdir()
    sub = run_prepare(dict(cfg, train_per_class=2), tmp_path / "sub")
    assert np.bincount(sub["train"].labels).tolist() == [2] * 10
    assert set(sub["train"].index) < set(train.index)
    np.testing.assert_array_equal(sub["val"].index, val.index)  # val is drawn first
    np.testing.assert_array_equal(sub["test"].index, test.index)


def test_cifar100(tmp_path, out_dir):
    imgs, labels, test_imgs, test_labels, names = write_cifar100(tmp_path / "c100")
    cfg = make_data_cfg(dataset="cifar100", root=str(tmp_path / "c100"), resolution=32,
                        val_per_class=1, train_per_class=1)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (100, 100, 100)
    assert train.attrs["class_names"] == names and train.attrs["num_classes"] == 100
    for s in (train, val):
        np.testing.assert_array_equal(s.images, imgs[s.index])
        np.testing.assert_array_equal(s.labels, labels[s.index])
        assert np.bincount(s.labels, minlength=100).tolist() == [1] * 100
    rows = test.index - 10**6
    np.testing.assert_array_equal(test.images, test_imgs[rows])
    np.testing.assert_array_equal(test.labels, test_labels[rows])


def test_cifar_at_another_resolution(tmp_path, out_dir):
    write_cifar10(tmp_path / "cifar")
    cfg = make_data_cfg(dataset="cifar10", root=str(tmp_path / "cifar"), resolution=16,
                        val_per_class=1, channels=1)
    splits = run_prepare(cfg, out_dir)
    assert all(s.images.shape[1:] == (1, 16, 16) for s in splits.values())


def test_cifar_missing_root(tmp_path, out_dir):
    cfg = make_data_cfg(dataset="cifar10", root=str(tmp_path / "nowhere"), resolution=32)
    expect_input_error(cfg, out_dir, "data.root", tmp_path / "nowhere")
    cfg["root"] = None
    expect_input_error(cfg, out_dir, "data.root", "cifar10")


def test_cifar_missing_batch_file(tmp_path, out_dir):
    write_cifar10(tmp_path / "cifar")
    (tmp_path / "cifar" / "cifar-10-batches-py" / "test_batch").unlink()
    cfg = make_data_cfg(dataset="cifar10", root=str(tmp_path / "cifar"), val_per_class=1)
    expect_input_error(cfg, out_dir, "data.root", tmp_path / "cifar")


def test_cifar_truncated_pickle(tmp_path, out_dir):
    write_cifar10(tmp_path / "cifar")
    truncate(tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_3")
    cfg = make_data_cfg(dataset="cifar10", root=str(tmp_path / "cifar"), val_per_class=1)
    expect_input_error(cfg, out_dir, "data.root", tmp_path / "cifar", "cifar10", "train")


# ------------------------------------------------------------------------------ tinyimagenet

WNIDS = ["n03000001", "n01000002", "n02000003"]  # not sorted: ids follow the file's order
WORDS = {"n01000002": "goldfish, Carassius auratus", "n02000003": "tabby, tabby cat",
         "n03000001": "school bus", "n09999999": "unused entry"}
COLORS = {"n03000001": (230, 20, 20), "n01000002": (20, 230, 20), "n02000003": (20, 20, 230)}
VAL_WNIDS = ["n02000003", "n03000001", "n01000002", "n01000002", "n03000001", "n02000003"]


def _jpeg(path: Path, color, size: int = 64, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.clip(np.asarray(color)[None, None] + rng.integers(-10, 11, (size, size, 3)),
                  0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, "JPEG", quality=90)


def write_tinyimagenet(root: Path, per_class: int = 4) -> Path:
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\t{t}\n" for w, t in WORDS.items()))
    for c, w in enumerate(WNIDS):
        boxes = []
        for i in range(per_class):
            _jpeg(folder / "train" / w / "images" / f"{w}_{i}.JPEG", COLORS[w], seed=10 * c + i)
            boxes.append(f"{w}_{i}.JPEG\t0\t0\t63\t63\n")
        (folder / "train" / w / f"{w}_boxes.txt").write_text("".join(boxes))
    lines = []
    for i, w in enumerate(VAL_WNIDS):
        _jpeg(folder / "val" / "images" / f"val_{i}.JPEG", COLORS[w], seed=100 + i)
        lines.append(f"val_{i}.JPEG\t{w}\t{i}\t{i + 1}\t60\t61\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    for i in range(2):
        _jpeg(folder / "test" / "images" / f"test_{i}.JPEG", (128, 128, 128), seed=200 + i)
    return folder


def _decode_jpeg(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def test_tinyimagenet_folder(tmp_path, out_dir):
    folder = write_tinyimagenet(tmp_path)
    cfg = make_data_cfg(dataset="tinyimagenet", root=str(tmp_path), resolution=64,
                        val_per_class=1)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (9, 3, 6)
    assert train.attrs["class_names"] == [WORDS[w] for w in WNIDS]
    assert train.attrs["num_classes"] == 3
    train_files = [folder / "train" / w / "images" / f"{w}_{i}.JPEG"
                   for w in WNIDS for i in range(4)]
    for s in (train, val):
        for img, label, i in zip(s.images, s.labels, s.index):
            path = train_files[i]
            assert path.parent.parent.name == WNIDS[label]  # class id = line in wnids.txt
            np.testing.assert_array_equal(img, _decode_jpeg(path))
            assert np.abs(img.mean(axis=(1, 2)) - COLORS[WNIDS[label]]).max() < 8
    rows = test.index - 10**6
    assert sorted(rows) == list(range(6))
    for img, label, row in zip(test.images, test.labels, rows):
        assert WNIDS[label] == VAL_WNIDS[row]  # val annotations give the test labels
        np.testing.assert_array_equal(img, _decode_jpeg(folder / "val" / "images" /
                                                         f"val_{row}.JPEG"))

    # the root may also be the tiny-imagenet-200 folder itself
    (tmp_path / "direct").mkdir()
    direct = run_prepare(dict(cfg, root=str(folder)), tmp_path / "direct")
    np.testing.assert_array_equal(direct["test"].images, test.images)


def test_tinyimagenet_h5(tmp_path, out_dir):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)  # NHWC
    labels = np.repeat(np.arange(3), 4)
    imgs_val = rng.integers(0, 256, (6, 3, 64, 64), dtype=np.uint8)  # NCHW
    labels_val = np.array([2, 1, 0, 0, 1, 2])
    path = write_h5_plain(tmp_path / "tiny-imagenet-200.h5", imgs=imgs, labels=labels,
                          imgs_val=imgs_val, labels_val=labels_val)
    cfg = make_data_cfg(dataset="tinyimagenet", root=str(path), resolution=64, val_per_class=1,
                        options={"num_classes": 3})
    splits = run_prepare(cfg, out_dir)
    train, test = splits["train"], splits["test"]
    assert (len(train), len(splits["val"]), len(test)) == (9, 3, 6)
    assert train.attrs["class_names"] == ["0", "1", "2"]
    np.testing.assert_array_equal(train.images, imgs[train.index].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(train.labels, labels[train.index])
    np.testing.assert_array_equal(test.images, imgs_val[test.index - 10**6])
    np.testing.assert_array_equal(test.labels, labels_val[test.index - 10**6])
    # with the default 200 classes, 197 classes have no training images
    (tmp_path / "again").mkdir()
    expect_input_error(dict(cfg, options={}), tmp_path / "again", "class 3",
                       "zero training images")


def test_tinyimagenet_mixed_image_sizes(tmp_path, out_dir):
    folder = write_tinyimagenet(tmp_path)
    odd = folder / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_2.JPEG"
    _jpeg(odd, COLORS[WNIDS[1]], size=32)
    cfg = make_data_cfg(dataset="tinyimagenet", root=str(tmp_path), resolution=64,
                        val_per_class=1)
    expect_input_error(cfg, out_dir, odd, "mixed image sizes")


def test_tinyimagenet_unknown_wnid_in_annotations(tmp_path, out_dir):
    folder = write_tinyimagenet(tmp_path)
    ann = folder / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_9.JPEG\tn77777777\t0\t0\t1\t1\n")
    cfg = make_data_cfg(dataset="tinyimagenet", root=str(tmp_path), val_per_class=1)
    expect_input_error(cfg, out_dir, ann, "line 7", "n77777777")


# ----------------------------------------------------------------------- the authors' HDF5

def write_rc49(path: Path, drop: str | None = None, **replace) -> dict:
    n_odd, n_even = 40, 20
    a = {
        "images_odd": coded_images(n_odd),
        "labels_odd": (0.1 + 0.2 * np.arange(n_odd) * 11 % 89.8).astype(np.float64),
        "types_odd": np.arange(n_odd) % 7,
        "images_even": coded_images(n_even, start=500),
        "labels_even": (0.2 + 0.2 * np.arange(n_even) * 17 % 89.6).astype(np.float64),
        "types_even": np.arange(n_even) % 7,
        "indx_odd_train": np.arange(0, 25),
        "indx_odd_subtrain": np.setdiff1d(np.arange(25), [3, 8, 13, 21, 24]),
        "indx_odd_subvalid": np.array([3, 8, 13, 21, 24]),
        "indx_odd_rest": np.arange(25, 40),
    }
    a.update(replace)
    if drop:
        del a[drop]
    write_h5_plain(path, **a)
    return a


def test_rc49(tmp_path, out_dir):
    a = write_rc49(tmp_path / "RC-49_64x64_25.h5")
    cfg = make_data_cfg(dataset="rc49", root=str(tmp_path / "RC-49_64x64_25.h5"))
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    np.testing.assert_array_equal(np.sort(train.index), a["indx_odd_subtrain"])
    np.testing.assert_array_equal(np.sort(val.index), a["indx_odd_subvalid"])
    even = TEST_OFFSET + np.arange(20)
    np.testing.assert_array_equal(np.sort(test.index), np.concatenate([a["indx_odd_rest"], even]))
    for s in (train, val):
        np.testing.assert_array_equal(decode(s.images), s.index)  # image rows follow the ids
        np.testing.assert_allclose(s.labels, a["labels_odd"][s.index], rtol=1e-6)
    odd = test.index < TEST_OFFSET
    np.testing.assert_array_equal(decode(test.images[odd]), test.index[odd])
    np.testing.assert_array_equal(decode(test.images[~odd], start=500),
                                  test.index[~odd] - TEST_OFFSET)
    np.testing.assert_allclose(test.labels[~odd], a["labels_even"][test.index[~odd] - TEST_OFFSET],
                               rtol=1e-6)
    for s in splits.values():
        assert s.task == "regression" and s.images.shape[1:] == (3, 16, 16)
        assert (s.attrs["label_min"], s.attrs["label_max"]) == (0.0, 90.0)
        assert s.attrs["label_unit"] == "degrees"


def test_utkface_v1(tmp_path, out_dir):
    n = 30
    labels = (1 + np.arange(n) * 7 % 60).astype(np.float64)
    a = dict(images=coded_images(n), labels=labels, indx_train=np.arange(20),
             indx_subtrain=np.arange(16), indx_subvalid=np.arange(16, 20),
             indx_test=np.arange(20, 30))
    path = write_h5_plain(tmp_path / "UTKFace_64x64.h5", **a)
    splits = run_prepare(make_data_cfg(dataset="utkface", root=str(path)), out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert sorted(train.index) == list(range(16))
    assert sorted(val.index) == list(range(16, 20))
    assert sorted(test.index) == list(range(20, 30))
    for s in splits.values():
        np.testing.assert_array_equal(decode(s.images), s.index)
        np.testing.assert_array_equal(s.labels, labels[s.index].astype(np.float32))
        assert s.attrs["label_unit"] == "years"
        assert s.attrs["label_min"] == labels[:16].min()
        assert s.attrs["label_max"] == labels[:16].max()


def test_utkface_v3(tmp_path, out_dir):
    rng = np.random.default_rng(4)
    labels_train = rng.integers(1, 61, 30).astype(np.float64)
    labels_test = rng.integers(1, 61, 10).astype(np.float64)
    path = write_h5_plain(tmp_path / "UTKFace_64x64_prop_0.8.h5",
                          images_train=coded_images(30), labels_train=labels_train,
                          images_test=coded_images(10, start=300), labels_test=labels_test)
    cfg = make_data_cfg(dataset="utkface", root=str(path), resolution=8)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (27, 3, 10)
    assert set(train.index) | set(val.index) == set(range(30))
    np.testing.assert_array_equal(np.sort(test.index), TEST_OFFSET + np.arange(10))
    np.testing.assert_array_equal(test.labels, labels_test[test.index - TEST_OFFSET])
    np.testing.assert_array_equal(val.labels, labels_train[val.index])
    assert train.images.shape[1:] == (3, 8, 8)
    assert train.attrs["label_min"] == labels_train.min()


def test_steering_angle_v3_with_negative_angles(tmp_path, out_dir):
    labels_train = np.linspace(-88.13, 97.92, 20)
    labels_test = np.array([-80.5, -1.25, 0.0, 45.5, 90.0])
    path = write_h5_plain(tmp_path / "SteeringAngle_64x64_prop_0.8.h5",
                          images_train=coded_images(20), labels_train=labels_train,
                          images_test=coded_images(5, start=100), labels_test=labels_test)
    splits = run_prepare(make_data_cfg(dataset="steering_angle", root=str(path)), out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 2, 5)
    np.testing.assert_array_equal(test.labels, labels_test[test.index - TEST_OFFSET]
                                  .astype(np.float32))
    assert test.labels.min() < 0
    for s in splits.values():
        assert s.attrs["label_min"] == pytest.approx(-88.13)
        assert s.attrs["label_max"] == pytest.approx(97.92)
        assert s.attrs["label_unit"] == "degrees"
    np.testing.assert_allclose(train.labels, labels_train[train.index], rtol=1e-6)


def test_imagenet100(tmp_path, out_dir):
    labels_train = np.repeat(np.arange(4), 3)
    labels_valid = np.arange(4)
    path = write_h5_plain(tmp_path / "ImageNet_128x128_100Class.h5",
                          images_train=coded_images(12, size=32), labels_train=labels_train,
                          images_valid=coded_images(4, start=50, size=32),
                          labels_valid=labels_valid)
    cfg = make_data_cfg(dataset="imagenet100", root=str(path), resolution=32, val_per_class=1,
                        options={"num_classes": 4})
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (8, 4, 4)
    assert train.attrs["class_names"] == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(decode(train.images), train.index)
    np.testing.assert_array_equal(train.labels, labels_train[train.index])
    np.testing.assert_array_equal(decode(test.images, start=50), test.index - TEST_OFFSET)
    np.testing.assert_array_equal(test.labels, labels_valid[test.index - TEST_OFFSET])


# ------------------------------------------------------------------------------ user data

def test_user_h5_classification_without_test(tmp_path, out_dir):
    labels = np.repeat(np.arange(3), 10)
    images = coded_images(30).transpose(0, 2, 3, 1)  # NHWC is accepted
    path = write_h5_plain(tmp_path / "mine.h5", images=images, labels=labels)
    cfg = make_data_cfg(dataset="h5", root=str(path), val_per_class=2, test_fraction=0.5)
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert np.bincount(test.labels).tolist() == [5] * 3
    assert np.bincount(val.labels).tolist() == [2] * 3
    assert np.bincount(train.labels).tolist() == [3] * 3
    assert train.attrs["class_names"] == ["0", "1", "2"]  # 1 + the largest label
    for s in splits.values():
        np.testing.assert_array_equal(decode(s.images), s.index)
        np.testing.assert_array_equal(s.labels, labels[s.index])


def test_user_h5_classification_with_test(tmp_path, out_dir):
    labels = np.repeat(np.arange(3), 4)
    path = write_h5_plain(tmp_path / "mine.h5", images=coded_images(12, channels=1),
                          labels=labels, images_test=coded_images(6, start=40, channels=1)[:, 0],
                          labels_test=np.array([0, 1, 2, 2, 1, 0]))
    cfg = make_data_cfg(dataset="h5", root=str(path), val_per_class=1,
                        options={"num_classes": 3})
    splits = run_prepare(cfg, out_dir)
    test = splits["test"]
    assert len(test) == 6 and len(splits["train"]) == 9
    assert test.images.shape[1:] == (1, 16, 16)  # NHW test images become one channel
    np.testing.assert_array_equal(test.images[:, 0, 0, 0], 40 + test.index - TEST_OFFSET)


def test_user_h5_regression(tmp_path, out_dir):
    labels = np.linspace(10.0, 50.0, 20).astype(np.float32)[:, None]  # (N, 1) is accepted
    path = write_h5_plain(tmp_path / "reg.h5", images=coded_images(20), labels=labels,
                          images_test=coded_images(4, start=90), labels_test=[5.0, 20, 60, 30])
    cfg = make_data_cfg(dataset="h5", root=str(path), val_fraction=0.25,
                        options={"task": "regression", "label_unit": "mm",
                                 "label_range": [0, 100]})
    splits = run_prepare(cfg, out_dir)
    train, val, test = (splits[k] for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (15, 5, 4)
    for s in splits.values():
        assert s.task == "regression"
        assert (s.attrs["label_min"], s.attrs["label_max"], s.attrs["label_unit"]) == \
            (0.0, 100.0, "mm")
    np.testing.assert_array_equal(train.labels, labels[train.index, 0])
    np.testing.assert_array_equal(test.labels, np.array([5.0, 20, 60, 30],
                                                        np.float32)[test.index - TEST_OFFSET])


def test_user_h5_regression_range_from_data_and_carved_test(tmp_path, out_dir):
    labels = np.linspace(-3.0, 7.0, 30)
    path = write_h5_plain(tmp_path / "reg.h5", images=coded_images(30), labels=labels)
    cfg = make_data_cfg(dataset="h5", root=str(path), test_fraction=0.5,
                        options={"task": "regression"})
    splits = run_prepare(cfg, out_dir)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [13, 2, 15]
    assert splits["test"].attrs["label_min"] == pytest.approx(-3.0)
    assert splits["test"].attrs["label_max"] == pytest.approx(7.0)


def _png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_imagefolder(root: Path, classes=("apple", "banana", "cherry"), per_class=5,
                      size=8, seed=0) -> list[tuple[Path, np.ndarray, int]]:
    """PNG (lossless) images; returns (path, HWC pixels, class) in the loader's file order."""
    rng = np.random.default_rng(seed)
    entries = []
    for k, name in enumerate(sorted(classes)):
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            path = root / name / f"img_{i:02d}.png"
            _png(path, arr)
            entries.append((path, arr, k))
        (root / name / "notes.txt").write_text("not an image")  # ignored by extension
    return entries


def test_imagefolder_flat(tmp_path, out_dir):
    entries = write_imagefolder(tmp_path / "pics")
    cfg = make_data_cfg(dataset="imagefolder", root=str(tmp_path / "pics"), resolution=8,
                        test_fraction=0.4, val_per_class=1)
    splits = run_prepare(cfg, out_dir)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [6, 3, 6]
    assert splits["train"].attrs["class_names"] == ["apple", "banana", "cherry"]
    for s in splits.values():
        for img, label, i in zip(s.images, s.labels, s.index):
            _, arr, k = entries[i]
            assert label == k
            np.testing.assert_array_equal(img, arr.transpose(2, 0, 1))


def test_imagefolder_train_test_gray(tmp_path, out_dir):
    train_entries = write_imagefolder(tmp_path / "pics" / "train", classes=("b", "a"))
    test_entries = write_imagefolder(tmp_path / "pics" / "test", classes=("a", "b"),
                                     per_class=2, seed=1)
    cfg = make_data_cfg(dataset="imagefolder", root=str(tmp_path / "pics"), resolution=8,
                        val_per_class=1, options={"mode": "L"})
    splits = run_prepare(cfg, out_dir)
    train, test = splits["train"], splits["test"]
    assert train.attrs["class_names"] == ["a", "b"]
    assert (len(train), len(splits["val"]), len(test)) == (8, 2, 4)
    assert train.images.shape[1:] == (1, 8, 8)
    for img, label, i in zip(test.images, test.labels, test.index):
        path, _, k = test_entries[i - TEST_OFFSET]
        assert label == k
        from PIL import Image

        with Image.open(path) as im:
            np.testing.assert_array_equal(img[0], np.asarray(im.convert("L")))
    assert {train_entries[i][2] for i in train.index} == {0, 1}


def test_imagefolder_test_class_not_in_train(tmp_path, out_dir):
    write_imagefolder(tmp_path / "pics" / "train", classes=("a", "b"))
    write_imagefolder(tmp_path / "pics" / "test", classes=("a", "zebra"), per_class=1)
    cfg = make_data_cfg(dataset="imagefolder", root=str(tmp_path / "pics"), resolution=8,
                        val_per_class=1)
    expect_input_error(cfg, out_dir, "zebra", tmp_path / "pics" / "test")


# ------------------------------------------------------------------------------ bad input

def _user_h5(tmp_path: Path, images=None, labels=None, **options) -> dict:
    images = coded_images(12) if images is None else images
    labels = np.repeat(np.arange(3), 4) if labels is None else labels
    path = write_h5_plain(tmp_path / "mine.h5", images=images, labels=labels)
    return make_data_cfg(dataset="h5", root=str(path), val_per_class=1, test_fraction=0.25,
                         options=options)


def _bad_missing_root(tmp):
    path = tmp / "RC-49.h5"
    return make_data_cfg(dataset="rc49", root=str(path)), ["data.root", path, "not found"]


def _bad_no_root(tmp):
    return make_data_cfg(dataset="utkface"), ["data.root", "utkface"]


def _bad_truncated_h5(tmp):
    path = tmp / "UTK.h5"
    write_h5_plain(path, images_train=coded_images(300, size=32), labels_train=np.ones(300),
                   images_test=coded_images(10), labels_test=np.ones(10))
    truncate(path)
    return make_data_cfg(dataset="utkface", root=str(path)), [path]


def _bad_not_hdf5(tmp):
    path = tmp / "RC.h5"
    path.write_text("<html>404 Not Found</html>\n")
    return make_data_cfg(dataset="rc49", root=str(path)), [path, "HDF5"]


def _bad_missing_key(tmp):
    path = tmp / "RC-49_64x64_5.h5"
    write_rc49(path, drop="indx_odd_rest")
    return make_data_cfg(dataset="rc49", root=str(path)), [path, "indx_odd_rest"]


def _bad_index_out_of_range(tmp):
    path = tmp / "RC-49_64x64_5.h5"
    write_rc49(path, indx_odd_rest=np.array([25, 26, 999]))
    return make_data_cfg(dataset="rc49", root=str(path)), [path, "indx_odd_rest", "999"]


def _bad_mixed_shapes(tmp):
    entries = write_imagefolder(tmp / "pics")
    odd = entries[7][0]
    _png(odd, np.zeros((10, 8, 3), np.uint8))
    return (make_data_cfg(dataset="imagefolder", root=str(tmp / "pics"), val_per_class=1),
            [odd, "mixed image sizes"])


def _bad_unreadable_image(tmp):
    entries = write_imagefolder(tmp / "pics")
    broken = entries[4][0]
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return (make_data_cfg(dataset="imagefolder", root=str(tmp / "pics"), val_per_class=1),
            [broken, "unreadable image"])


def _bad_label_out_of_range(tmp):
    labels = np.arange(12) % 10
    labels[5] = 10
    return (_user_h5(tmp, labels=labels, num_classes=10),
            ["label 10", "row 5", "[0, 10)", tmp / "mine.h5"])


def _bad_negative_label(tmp):
    labels = np.repeat(np.arange(3), 4)
    labels[2] = -1
    return _user_h5(tmp, labels=labels, num_classes=3), ["label -1", "row 2"]


def _bad_nan_regression(tmp):
    labels = np.linspace(0, 1, 12)
    labels[7] = np.nan
    return (_user_h5(tmp, labels=labels, task="regression"),
            ["row 7 is nan", tmp / "mine.h5"])


def _bad_nan_classification(tmp):
    labels = np.repeat(np.arange(3.0), 4)
    labels[9] = np.nan
    return _user_h5(tmp, labels=labels), ["row 9 is nan, not a class id"]


def _bad_fractional_class(tmp):
    labels = np.repeat(np.arange(3.0), 4)
    labels[1] = 0.5
    return _user_h5(tmp, labels=labels, num_classes=3), ["row 1 is 0.5, not a class id"]


def _bad_empty_class_folder(tmp):
    write_imagefolder(tmp / "pics", classes=("a", "c"))
    (tmp / "pics" / "b").mkdir()
    return (make_data_cfg(dataset="imagefolder", root=str(tmp / "pics"), val_per_class=1),
            ["class 1", "'b'", "zero training images"])


def _bad_class_absent_from_h5(tmp):
    return _user_h5(tmp, num_classes=5), ["class 3", "zero training images"]


def _bad_float_images(tmp):
    return (_user_h5(tmp, images=coded_images(12).astype(np.float32)),
            ["uint8", "float32", f"{tmp / 'mine.h5'}:images"])


def _bad_image_shape(tmp):
    return (_user_h5(tmp, images=np.zeros((12, 5, 8, 8), np.uint8)),
            ["channels", "(12, 5, 8, 8)"])


def _bad_length_mismatch(tmp):
    return _user_h5(tmp, labels=np.zeros(11, np.int64)), ["12 images but 11 labels"]


def _bad_task_option(tmp):
    return _user_h5(tmp, task="ranking"), ["data.options.task", "ranking"]


def _bad_unknown_option(tmp):
    return (make_data_cfg(dataset="digits_angle", options={"n_test_angles": 3}),
            ["data.options.n_test_angles", "n_train_angles"])


def _bad_unknown_dataset(tmp):
    return make_data_cfg(dataset="mnist"), ["'mnist'", "digits", "cifar10", "imagefolder"]


def _bad_too_few_for_val(tmp):
    return _user_h5(tmp, num_classes=3) | {"val_per_class": 9}, ["data.val_per_class", "class"]


def _bad_empty_val(tmp):
    cfg = _user_h5(tmp, num_classes=3)
    cfg.update(val_per_class=None, val_fraction=0.01)
    return cfg, ["val split is empty", "data.val_fraction"]


def _bad_no_class_folders(tmp):
    (tmp / "pics").mkdir()
    (tmp / "pics" / "loose.png").write_bytes(b"")
    return (make_data_cfg(dataset="imagefolder", root=str(tmp / "pics")),
            ["data.root", "no class sub-folders"])


def _bad_tiny_no_wnids(tmp):
    (tmp / "tiny").mkdir()
    return make_data_cfg(dataset="tinyimagenet", root=str(tmp / "tiny")), ["wnids.txt"]


BAD_INPUTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("_bad_")}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_with_one_line_and_writes_nothing(case, tmp_path, out_dir):
    cfg, needles = BAD_INPUTS[case](tmp_path)
    expect_input_error(cfg, out_dir, *needles)


def test_outputs_already_present_are_kept_when_input_is_bad(tmp_path, out_dir):
    """A failed rerun must not clobber or half-write the previous split files."""
    run_prepare(_user_h5(tmp_path, num_classes=3), out_dir)
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    with pytest.raises(CgankdInputError):
        prepare_data(_user_h5(tmp_path, num_classes=5), split_outputs(out_dir))
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
