"""CIFAR batches are pickles: reading one must never run code the file asks for.

The loader's restricted unpickler allows only what the archive format holds; a batch file in the
exact layout whose pickle names anything else (here ``os.system``) is refused with one line
naming the file, and the command never runs. Genuine batches (written by the loader tests in
the archive's Python 2 format) still load.
"""

import os
import pickle

import numpy as np
import pytest
from conftest import make_data_cfg
from test_data_loaders import _batch, _dump_py2, run_prepare, write_cifar10

from cgankd.data.cifar import read_batch
from cgankd.errors import CgankdInputError


class _Shell:
    """Pickles as a call of ``os.system(command)``: what a malicious batch file can hold."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _malicious_batch(marker) -> dict:
    batch = _batch(np.zeros((10, 3, 32, 32), np.uint8), list(range(10)), "labels",
                   "training batch 1 of 5", "b1")
    batch["filenames"][0] = _Shell(f"touch {marker}")
    return batch


def test_a_batch_that_runs_a_command_is_refused(tmp_path, out_dir):
    root = tmp_path / "cifar"
    write_cifar10(root)
    path = root / "cifar-10-batches-py" / "data_batch_1"
    marker = tmp_path / "ran"
    _dump_py2(path, _malicious_batch(marker))
    with pytest.raises(CgankdInputError) as err:
        run_prepare(make_data_cfg(dataset="cifar10", root=str(root), val_per_class=1), out_dir)
    msg = str(err.value)
    assert str(path) in msg and "refused: it asks for posix.system" in msg, msg
    assert "\n" not in msg and not marker.exists()
    assert list(out_dir.iterdir()) == []

    with open(path, "rb") as f:  # the file is what it claims: a plain load runs the command
        pickle.load(f, encoding="latin1")
    assert marker.exists()


def test_meta_file_cannot_name_other_types(tmp_path):
    path = tmp_path / "batches.meta"
    _dump_py2(path, {"label_names": ["a"], "extra": pickle.PickleBuffer})
    with pytest.raises(CgankdInputError, match="refused: it asks for pickle.PickleBuffer"):
        read_batch(path)


def test_genuine_batches_still_load(tmp_path, out_dir):
    images, labels, _, _ = write_cifar10(tmp_path / "cifar")
    batch = read_batch(tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_2")
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (10, 3072)
    np.testing.assert_array_equal(batch["data"].reshape(10, 3, 32, 32), images[10:20])
    assert batch["labels"] == labels[10:20].tolist()
    splits = run_prepare(make_data_cfg(dataset="cifar10", root=str(tmp_path / "cifar"),
                                       val_per_class=1), out_dir)
    assert len(splits["test"]) == 30
