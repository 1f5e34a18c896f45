"""cgankd.formats: one declaration per file kind, one tag style, old tags still read, and
readers that name the file and the key at fault."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from cgankd import formats
from cgankd.errors import CgankdInputError
from cgankd.file_info import describe
from cgankd.formats import (GAN_CHECKPOINT, GENERATOR, H5_KINDS, MODEL, SPLIT, TORCH_KINDS,
                            check_fields)
from cgankd.gan.generate import load_generator
from cgankd.h5io import Split, read_split, write_h5, write_split
from cgankd.stages.filter_relabel import run as filter_relabel
from cgankd.stages.train_cgan import train_cgan
from cgankd.train.model_file import load_model

PACKAGE = Path(__file__).resolve().parents[1] / "cgankd"
TINY_GAN = {"g_ch": 2, "d_ch": 2, "dim_z": 8, "dim_shared": 8, "batch_size": 8, "n_dis": 1,
            "ema_start": 3, "checkpoint_every": 1, "sample_every": 0, "iterations": 1}


def _split(n: int = 12) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 3,
                 np.arange(n), {"task": "classification", "num_classes": 3})


def test_every_tag_has_one_style_and_is_declared_once():
    tags = [t for kind in (*H5_KINDS, *TORCH_KINDS) for t in kind.tags]
    assert len(tags) == len(set(tags))
    for kind in (*H5_KINDS, *TORCH_KINDS):
        if kind.tag is not None:
            assert re.fullmatch(r"cgankd\.[a-z][a-z-]*/\d+", kind.tag), kind.tag
    # no module but formats spells a tag: writers and readers take it from the declaration
    spelled = re.compile(r"[\"']cgankd[.-][a-z-]+/\d+[\"']")
    for path in PACKAGE.rglob("*.py"):
        if path.name != "formats.py":
            assert not spelled.search(path.read_text()), f"{path} spells a format tag"


@pytest.fixture(scope="module")
def old_tagged(tmp_path_factory):
    """A generator and a GAN checkpoint as files written before the tag style changed."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("gan")
    train_cgan(_split(24), TINY_GAN, out, progress=False)
    paths = {}
    for name, kind in (("generator.pt", GENERATOR), ("checkpoint.pt", GAN_CHECKPOINT)):
        blob = torch.load(out / name, weights_only=True)
        assert blob["format"] == kind.tag  # what is written now
        blob["format"] = kind.old_tags[0]
        paths[kind.name] = out / f"old_{name}"
        torch.save(blob, paths[kind.name])
    return paths


def test_old_generator_tag_still_loads(old_tagged):
    path = old_tagged["generator"]
    G, meta = load_generator(path, "cpu")
    assert meta["format"] == "cgankd-generator/1" and meta["task"] == "classification"
    assert describe(path)["kind"] == "generator"


def test_old_gan_checkpoint_tag_is_still_known(old_tagged):
    path = old_tagged["gan_checkpoint"]
    blob = check_fields(torch.load(path, weights_only=True), GAN_CHECKPOINT, path)
    assert blob["format"] == "cgankd-gan-checkpoint/1"
    assert describe(path)["kind"] == GAN_CHECKPOINT.title


def test_untagged_h5_files_are_told_by_their_columns(tmp_path):
    """HDF5 files written before they carried a tag keep their kind."""
    s = _split()
    write_h5(tmp_path / "old.h5", {"images": s.images, "labels": s.labels, "index": s.index},
             {**s.attrs, "split": "train", "dataset": "digits"})
    with h5py.File(tmp_path / "old.h5") as f:
        assert "format" not in f.attrs
    assert describe(tmp_path / "old.h5")["kind"] == "data split (train)"
    assert len(read_split(tmp_path / "old.h5")) == 12


def test_a_split_reader_names_the_file_and_the_missing_or_bad_key(tmp_path):
    s = _split()
    write_h5(tmp_path / "no_index.h5", {"images": s.images, "labels": s.labels}, s.attrs)
    with pytest.raises(CgankdInputError, match=r"no_index\.h5: missing dataset 'index'"):
        read_split(tmp_path / "no_index.h5")
    write_h5(tmp_path / "grey.h5", {"images": s.images[:, 0], "labels": s.labels,
                                    "index": s.index}, s.attrs)
    with pytest.raises(CgankdInputError, match=r"grey\.h5: dataset 'images' must be images"):
        read_split(tmp_path / "grey.h5")
    write_split(tmp_path / "no_task.h5", Split(s.images, s.labels, s.index, {}))
    with pytest.raises(CgankdInputError, match=r"no_task\.h5: missing root attribute 'task'"):
        read_split(tmp_path / "no_task.h5")


def test_a_pool_reader_names_the_missing_column_before_any_work(tmp_path):
    s = _split()
    write_h5(tmp_path / "pool.h5", {"images": s.images, "labels": s.labels, "index": s.index},
             {"task": "classification", "num_classes": 3})
    with pytest.raises(CgankdInputError, match=r"pool\.h5: missing dataset 'density_ratio'"):
        filter_relabel(tmp_path / "pool.h5", tmp_path / "absent.pt", tmp_path / "out.h5",
                       options=None, fake_count=3, seed=0)


def test_torch_readers_name_the_file_and_the_tag_or_field(tmp_path):
    torch.save({"format": MODEL.tag, "state_dict": {}, "net": "cnn"}, tmp_path / "m.pt")
    with pytest.raises(CgankdInputError, match=r"m\.pt: model file lacks field 'num_outputs'"):
        load_model(tmp_path / "m.pt")
    torch.save({"format": MODEL.tag, "state_dict": {}}, tmp_path / "g.pt")
    with pytest.raises(CgankdInputError, match=r"g\.pt: not a cgankd generator file \(format "
                                               r"'cgankd\.model/1'"):
        load_generator(tmp_path / "g.pt", "cpu")


def test_a_writer_gives_exactly_the_declared_columns(tmp_path):
    s = _split()
    with pytest.raises(ValueError, match="a split file has columns"):
        write_h5(tmp_path / "x.h5", {"images": s.images, "labels": s.labels}, s.attrs,
                 kind=SPLIT)
    assert not (tmp_path / "x.h5").exists()


def test_kinds_are_found_by_tag():
    assert formats.h5_kind_of(SPLIT.tag, set(), {}) is SPLIT
    assert formats.h5_kind_of("cgankd.unknown/9", {"images", "labels", "index"}, {}) is None
    assert formats.torch_kind_of({"format": "cgankd-generator/1"}) is GENERATOR
    assert formats.torch_kind_of({"resume_key": "k"}) is formats.RESUME_CHECKPOINT
