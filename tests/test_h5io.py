"""HDF5 I/O: round trips, chunk/filter layout, byte-identical reruns, atomic writes, read errors."""

import time

import h5py
import numpy as np
import pytest
import torch

from cgankd import h5io
from cgankd.errors import CgankdInputError
from cgankd.h5io import (CHUNK_BYTES, PROVENANCE_GROUP, READ_CHUNK_BYTES, Split,
                         StreamingH5Writer, chunk_rows, decode_attrs, open_h5, read_array,
                         read_chunks, read_split, write_h5, write_split)

ATTRS = {
    "task": "classification",
    "num_classes": 3,
    "label_min": -1.5,
    "flag": True,
    "nothing": None,
    "class_names": ["cat", "dog", "ünïcode"],
    "nested": {"b": [1, 2, {"c": 3.25}], "a": "x"},
    "np_int": np.int64(7),
    "np_list": np.arange(3),
}
PROVENANCE = {"created_utc": "2024-01-01T00:00:00+00:00", "git_sha": "abc", "host": "h"}


def _arrays(n: int = 50) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "images": rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8),
        "labels": rng.integers(0, 3, n).astype(np.int64),
        "targets": rng.normal(size=n).astype(np.float32),
        "features": rng.normal(size=(n, 5)),  # float64
        "index": np.arange(n, dtype=np.int64) + 1000,
    }


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _assert_one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert str(needle) in msg, (needle, msg)


def test_write_read_round_trip_keeps_dtypes_shapes_and_attrs(tmp_path):
    arrays = _arrays()
    path = tmp_path / "sub" / "f.h5"  # the parent folder is created
    write_h5(path, arrays, ATTRS, PROVENANCE)
    with open_h5(path) as f:
        assert sorted(f.keys()) == sorted([*arrays, PROVENANCE_GROUP])
        for name, a in arrays.items():
            back = read_array(f, name)
            assert back.dtype == a.dtype and back.shape == a.shape
            np.testing.assert_array_equal(back, a)
        attrs = decode_attrs(f.attrs)
        prov = decode_attrs(f[PROVENANCE_GROUP].attrs)
    expected = dict(ATTRS, np_int=7, np_list=[0, 1, 2])
    assert attrs == expected
    assert isinstance(attrs["class_names"], list) and isinstance(attrs["nested"], dict)
    assert prov == PROVENANCE


def test_split_round_trip(tmp_path):
    a = _arrays(12)
    split = Split(images=a["images"], labels=a["labels"], index=a["index"],
                  attrs={"task": "classification", "class_counts": [4, 4, 4]})
    write_split(tmp_path / "s.h5", split, PROVENANCE)
    back = read_split(tmp_path / "s.h5")
    assert back.task == "classification" and len(back) == 12
    assert back.attrs == {**split.attrs, "format": "cgankd.split/1"}  # the writer stamps its tag
    for name in ("images", "labels", "index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(split, name))


def test_chunks_hold_about_one_mib_capped_at_n_with_gzip_and_shuffle(tmp_path):
    n = 200
    images = np.zeros((n, 3, 64, 64), np.uint8)  # 12,288 bytes a row -> 85 rows a chunk
    write_h5(tmp_path / "big.h5", {"images": images, "labels": np.zeros(n, np.int64)})
    write_h5(tmp_path / "small.h5", {"images": images[:10], "labels": np.zeros(10, np.int64)})
    with h5py.File(tmp_path / "big.h5", "r") as f:
        ds = f["images"]
        rows = ds.chunks[0]
        assert ds.chunks[1:] == (3, 64, 64)
        assert rows == CHUNK_BYTES // (3 * 64 * 64) == 85
        assert 0.9 * CHUNK_BYTES <= rows * 3 * 64 * 64 <= CHUNK_BYTES
        assert f["labels"].chunks == (n,)  # 1 MiB of int64 is far more than N rows: capped
        for name in ("images", "labels"):
            assert f[name].compression == "gzip"
            assert f[name].shuffle
    with h5py.File(tmp_path / "small.h5", "r") as f:
        assert f["images"].chunks == (10, 3, 64, 64)
    assert chunk_rows((5, 4096, 4096), np.float32) == 1  # a row above 1 MiB: one row a chunk


def test_empty_arrays_can_be_written(tmp_path):
    write_h5(tmp_path / "e.h5", {"images": np.zeros((0, 1, 4, 4), np.uint8),
                                 "labels": np.zeros(0, np.int64)}, {"n": 0})
    with open_h5(tmp_path / "e.h5") as f:
        assert read_array(f, "images").shape == (0, 1, 4, 4)
        assert read_array(f, "labels").shape == (0,)


def test_identical_inputs_give_byte_identical_files_across_time(tmp_path):
    arrays = _arrays()
    write_h5(tmp_path / "a.h5", arrays, ATTRS, PROVENANCE)
    time.sleep(1.1)  # a stored timestamp would now differ
    write_h5(tmp_path / "b.h5", arrays, ATTRS, PROVENANCE)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_volatile_provenance_only_changes_the_provenance_group(tmp_path):
    arrays = _arrays()
    write_h5(tmp_path / "a.h5", arrays, ATTRS, PROVENANCE)
    other = dict(PROVENANCE, created_utc="2031-05-06T07:08:09+00:00", host="elsewhere-longer")
    write_h5(tmp_path / "b.h5", arrays, ATTRS, other)
    with h5py.File(tmp_path / "a.h5", "r") as fa, h5py.File(tmp_path / "b.h5", "r") as fb:
        assert sorted(fa.keys()) == sorted(fb.keys())
        for name in arrays:
            np.testing.assert_array_equal(fa[name][()], fb[name][()])
            assert fa[name].dtype == fb[name].dtype and fa[name].chunks == fb[name].chunks
        assert dict(fa.attrs) == dict(fb.attrs)
        assert decode_attrs(fa[PROVENANCE_GROUP].attrs) == PROVENANCE
        assert decode_attrs(fb[PROVENANCE_GROUP].attrs) == other


def test_failed_write_leaves_no_file_and_no_temp_file(tmp_path):
    with pytest.raises(TypeError):  # datasets are written, then the attrs fail
        write_h5(tmp_path / "f.h5", _arrays(), {"bad": object()})
    assert _files(tmp_path) == []


def test_failed_write_leaves_an_existing_target_untouched(tmp_path):
    path = tmp_path / "f.h5"
    write_h5(path, _arrays(), ATTRS, PROVENANCE)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_h5(path, {"images": np.ones((3, 2), np.uint8)}, {"bad": object()})
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["f.h5"]


def test_mismatched_lengths_are_rejected_before_writing(tmp_path):
    with pytest.raises(ValueError, match="sample count"):
        write_h5(tmp_path / "f.h5", {"a": np.zeros(3), "b": np.zeros(4)})
    assert _files(tmp_path) == []


def test_streaming_writer_appends_batches(tmp_path):
    a = _arrays(23)
    path = tmp_path / "s.h5"
    specs = {"images": ((3, 8, 8), np.uint8), "targets": ((), np.float32)}
    with StreamingH5Writer(path, specs, {"kind": "stream"}, PROVENANCE) as w:
        for start in range(0, 23, 10):  # batches of 10, 10, 3
            w.append(images=a["images"][start:start + 10],
                     targets=a["targets"][start:start + 10])
        w.attrs["rows"] = w.rows
        assert not path.exists()  # only renamed into place on close
    assert _files(tmp_path) == ["s.h5"]
    with open_h5(path) as f:
        np.testing.assert_array_equal(read_array(f, "images"), a["images"])
        np.testing.assert_array_equal(read_array(f, "targets"), a["targets"])
        assert f["images"].dtype == np.uint8 and f["targets"].dtype == np.float32
        assert f["images"].compression == "gzip" and f["images"].shuffle
        assert decode_attrs(f.attrs) == {"kind": "stream", "rows": 23}
        assert decode_attrs(f[PROVENANCE_GROUP].attrs) == PROVENANCE


def test_streaming_writer_rejects_wrong_batches(tmp_path):
    specs = {"x": ((2,), np.float32), "y": ((), np.int64)}
    with pytest.raises(ValueError):
        with StreamingH5Writer(tmp_path / "s.h5", specs) as w:
            w.append(x=np.zeros((3, 2), np.float32))  # "y" missing
    with pytest.raises(ValueError):
        with StreamingH5Writer(tmp_path / "s.h5", specs) as w:
            w.append(x=np.zeros((3, 2), np.float32), y=np.zeros(2, np.int64))
    assert _files(tmp_path) == []


def test_streaming_writer_aborts_cleanly_on_exception(tmp_path):
    path = tmp_path / "s.h5"
    write_h5(path, {"x": np.arange(4.0)})
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with StreamingH5Writer(path, {"x": ((), np.float64)}) as w:
            w.append(x=np.arange(10.0))
            raise RuntimeError("boom")
    assert path.read_bytes() == before  # the old file stays; the partial one is gone
    assert _files(tmp_path) == ["s.h5"]
    with pytest.raises(KeyError):
        with StreamingH5Writer(tmp_path / "t.h5", {"x": ((), np.float64)}) as w:
            raise KeyError("x")
    assert _files(tmp_path) == ["s.h5"]


def test_open_missing_file(tmp_path):
    path = tmp_path / "nope.h5"
    with pytest.raises(CgankdInputError) as e:
        open_h5(path)
    _assert_one_line_error(e, path, "not found")


def test_open_truncated_file(tmp_path):
    path = tmp_path / "cut.h5"
    write_h5(path, _arrays(400), ATTRS, PROVENANCE)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CgankdInputError) as e:
        with open_h5(path) as f:  # should it open at all, reading must still fail clearly
            for key in ("images", "labels", "targets", "features", "index"):
                read_array(f, key)
    _assert_one_line_error(e, path)


def test_open_non_hdf5_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("this is not HDF5\nsecond line\n")
    with pytest.raises(CgankdInputError) as e:
        open_h5(path)
    _assert_one_line_error(e, path, "HDF5")


def test_read_array_names_a_missing_key(tmp_path):
    path = tmp_path / "f.h5"
    write_h5(path, {"images": np.zeros((2, 1, 2, 2), np.uint8)})
    with open_h5(path) as f, pytest.raises(CgankdInputError) as e:
        read_array(f, "labels_odd")
    _assert_one_line_error(e, "labels_odd", path, "images")


def test_read_split_rejects_non_uint8_images(tmp_path):
    path = tmp_path / "s.h5"
    write_h5(path, {"images": np.zeros((2, 1, 2, 2), np.float32), "labels": np.zeros(2),
                    "index": np.arange(2)})
    with pytest.raises(CgankdInputError) as e:
        read_split(path)
    _assert_one_line_error(e, path, "uint8")


def test_read_chunks_covers_every_row_once_in_order_with_a_partial_last_chunk(tmp_path):
    a = _arrays(23)
    write_h5(tmp_path / "f.h5", a)
    chunks = list(read_chunks(tmp_path / "f.h5", ["images", "targets"], rows=10))
    assert [c[0] for c in chunks] == [range(0, 10), range(10, 20), range(20, 23)]
    for rows, chunk in chunks:
        assert sorted(chunk) == ["images", "targets"]  # only the keys asked for
        assert chunk["images"].dtype == torch.uint8 and chunk["targets"].dtype == torch.float32
        assert chunk["images"].device.type == "cpu" and not chunk["images"].is_pinned()
        np.testing.assert_array_equal(chunk["images"].numpy(), a["images"][rows.start:rows.stop])
        np.testing.assert_array_equal(chunk["targets"].numpy(), a["targets"][rows.start:rows.stop])


def test_read_chunks_rounds_rows_to_a_multiple_and_defaults_to_the_byte_budget(tmp_path,
                                                                                monkeypatch):
    write_h5(tmp_path / "f.h5", _arrays(23))
    ranges = [r for r, _ in read_chunks(tmp_path / "f.h5", ["labels"], rows=5, multiple_of=4)]
    assert ranges == [range(0, 8), range(8, 16), range(16, 23)]
    whole = list(read_chunks(tmp_path / "f.h5", ["images", "index"]))  # 23 rows << 64 MiB
    assert [r for r, _ in whole] == [range(0, 23)] and READ_CHUNK_BYTES == 64 << 20
    monkeypatch.setattr(h5io, "READ_CHUNK_BYTES", 1000)  # 192 + 8 bytes a row: 5 rows
    ranges = [r for r, _ in read_chunks(tmp_path / "f.h5", ["images", "index"])]
    assert ranges[0] == range(0, 5) and ranges[-1] == range(20, 23)
    ranges = [r for r, _ in read_chunks(tmp_path / "f.h5", ["images", "index"], multiple_of=6)]
    assert ranges == [range(0, 6), range(6, 12), range(12, 18), range(18, 23)]


def test_read_chunks_of_an_empty_file_yields_nothing(tmp_path):
    write_h5(tmp_path / "e.h5", {"images": np.zeros((0, 1, 4, 4), np.uint8)})
    assert list(read_chunks(tmp_path / "e.h5", ["images"], rows=3)) == []


def test_read_chunks_reads_each_dataset_in_one_slice_per_chunk(tmp_path, monkeypatch):
    write_h5(tmp_path / "f.h5", _arrays(23))
    calls = []
    original = h5py.Dataset.read_direct

    def spy(self, dest, source_sel=None, dest_sel=None):
        calls.append((self.name, source_sel))
        return original(self, dest, source_sel, dest_sel)

    monkeypatch.setattr(h5py.Dataset, "read_direct", spy)
    list(read_chunks(tmp_path / "f.h5", ["images", "labels"], rows=10))
    assert calls == [(f"/{key}", np.s_[start:stop]) for start, stop in ((0, 10), (10, 20), (20, 23))
                     for key in ("images", "labels")]


def test_read_chunks_names_file_and_key_when_a_key_is_missing_or_lengths_differ(tmp_path):
    path = tmp_path / "f.h5"
    write_h5(path, {"images": np.zeros((2, 1, 2, 2), np.uint8)})
    with pytest.raises(CgankdInputError) as e:
        next(read_chunks(path, ["images", "density_ratio"]))
    _assert_one_line_error(e, path, "density_ratio", "images")
    with h5py.File(path, "a") as f:
        f["labels"] = np.zeros(3)
        f["scalar"] = 1.0
    with pytest.raises(CgankdInputError) as e:
        next(read_chunks(path, ["images", "labels"]))
    _assert_one_line_error(e, path, "sample count", "'labels': 3")
    with pytest.raises(CgankdInputError) as e:
        next(read_chunks(path, ["scalar"]))
    _assert_one_line_error(e, path, "'scalar'", "scalar")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_read_chunks_to_cuda_arrive_on_the_device(tmp_path):
    a = _arrays(23)
    write_h5(tmp_path / "f.h5", a)
    for rows, chunk in read_chunks(tmp_path / "f.h5", ["images"], rows=10, device="cuda"):
        assert chunk["images"].is_cuda
        np.testing.assert_array_equal(chunk["images"].cpu().numpy(),
                                      a["images"][rows.start:rows.stop])
