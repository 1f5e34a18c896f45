"""The ``cgankd`` command: ``generate`` writes a fake set the pipeline reads (or a PNG folder),
``info`` names what a file holds, and bad input ends in one line with exit status 2."""

import json
import subprocess
import sys
from importlib.metadata import entry_points

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from cgankd.cli import main
from cgankd.stages.train_cgan import train_cgan
from cgankd.h5io import read_split, write_split
from cgankd.nets import build_net
from cgankd.train.model_file import save_model
from cgankd.train.resume import Resume
from cgankd.train.tensorset import tensorset_from_split
from toy_data import toy_split

TINY = {"g_ch": 2, "d_ch": 2, "dim_z": 8, "dim_shared": 8, "batch_size": 8, "n_dis": 2,
        "ema_start": 3, "checkpoint_every": 4, "sample_every": 5, "iterations": 1}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()  # tiny nets on a shared 2-core machine: one thread
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    """A 3-class 1x8x8 generator and a 3x8x8 regression one over [0, 90], one step each."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("gans")
    train_cgan(toy_split(), TINY, root / "cls", progress=False)
    train_cgan(toy_split(task="regression", channels=3), {**TINY, "backbone": "sagan"},
               root / "reg", progress=False)
    return root / "cls" / "generator.pt", root / "reg" / "generator.pt"


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_generate_classification_reads_back_as_training_data(generators, tmp_path, capsys):
    cls, _ = generators
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        rc, out, _ = run(["generate", cls, "--per-class", 4, "--out", tmp_path / f"{name}.h5",
                          "--seed", seed, "--device", "cpu"], capsys)
        assert rc == 0 and "wrote 12 images (3 classes" in out
    a, b, c = (read_split(tmp_path / f"{n}.h5") for n in "abc")
    np.testing.assert_array_equal(a.labels, np.repeat(np.arange(3), 4))
    assert a.labels.dtype == np.int64 and a.images.shape == (12, 1, 8, 8)
    assert a.attrs["task"] == "classification" and a.attrs["num_classes"] == 3
    np.testing.assert_array_equal(a.images, b.images)  # a seed fixes the images
    assert not np.array_equal(a.images, c.images)
    assert len(tensorset_from_split(a, None)) == 12  # what train_student does with extra sets


def test_generate_regression_labels_grid_and_file(generators, tmp_path, capsys):
    _, reg = generators
    rc, _, _ = run(["generate", reg, "--labels", "0:90:45", "--per-class", 2,
                    "--out", tmp_path / "spec.h5"], capsys)
    assert rc == 0
    spec = read_split(tmp_path / "spec.h5")
    np.testing.assert_allclose(spec.labels, [0, 0, 45, 45, 90, 90])
    assert spec.labels.dtype == np.float32 and spec.images.shape == (6, 3, 8, 8)
    assert run(["generate", reg, "--grid", 5, "--out", tmp_path / "grid.h5"], capsys)[0] == 0
    np.testing.assert_allclose(read_split(tmp_path / "grid.h5").labels, [0, 22.5, 45, 67.5, 90])
    (tmp_path / "labels.txt").write_text("# ages\n10\n20.5 30\n")
    assert run(["generate", reg, "--labels-file", tmp_path / "labels.txt",
                "--out", tmp_path / "file.h5"], capsys)[0] == 0
    np.testing.assert_allclose(read_split(tmp_path / "file.h5").labels, [10, 20.5, 30])
    rc, _, err = run(["generate", reg, "--labels", "80,100", "--out", tmp_path / "x.h5"],
                     capsys)
    assert rc == 2 and "label 100 lies outside" in err and err.count("\n") == 1
    assert not (tmp_path / "x.h5").exists()


def test_png_folder_holds_the_same_images(generators, tmp_path, capsys):
    cls, reg = generators
    run(["generate", cls, "--per-class", 2, "--out", tmp_path / "f.h5", "--seed", 5], capsys)
    assert run(["generate", cls, "--per-class", 2, "--png", tmp_path / "png", "--seed", 5],
               capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["0", "1", "2"]
    files = sorted((tmp_path / "png").glob("*/*.png"))
    assert [f"{p.parent.name}/{p.name}" for p in files] == \
        ["0/0.png", "0/1.png", "1/2.png", "1/3.png", "2/4.png", "2/5.png"]
    images = read_split(tmp_path / "f.h5").images
    for i, path in enumerate(files):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), images[i, 0])
    assert run(["generate", reg, "--labels", "0,45", "--png", tmp_path / "angles"],
               capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "angles").iterdir()) == ["0_0.png", "45_1.png"]
    assert np.asarray(Image.open(tmp_path / "angles" / "45_1.png")).shape == (8, 8, 3)
    rc, _, err = run(["generate", cls, "--per-class", 1, "--png", tmp_path / "png"], capsys)
    assert rc == 2 and "not empty" in err  # never mixes two runs in one folder


def _split_file(path):
    split = toy_split(labels=np.array([0, 1, 1, 2, 2, 2]), dataset="toy", split="train",
                      config_hash="feedfeedfeedfeed")
    write_split(path, split, {"git_sha": "abc123", "host": "here"})


def test_info_names_kind_shapes_labels_and_hashes(generators, tmp_path, capsys):
    cls, reg = generators
    _split_file(tmp_path / "train.h5")
    rc, out, _ = run(["info", tmp_path / "train.h5"], capsys)
    assert rc == 0 and "data split (train)" in out and "images: uint8 (6, 1, 8, 8)" in out
    assert "classes: 3 (a: 1, b: 2, c: 3)" in out and "feedfeedfeedfeed" in out
    assert "git_sha abc123" in out
    rc, out, _ = run(["info", "--json", tmp_path / "train.h5"], capsys)
    info = json.loads(out)
    assert info["kind"] == "data split (train)" and info["samples"] == 6
    assert info["labels"]["class_counts"] == [1, 2, 3]

    rc, out, _ = run(["info", cls], capsys)
    assert rc == 0 and "generator, format cgankd.generator/1" in out
    assert "image shape: 1x8x8" in out and "classes: 3" in out
    assert "label range: declared 0 .. 90" in run(["info", reg], capsys)[1]

    net = build_net("cnn", 3, 1, width=4, blocks=2)
    save_model(tmp_path / "model.pt", net.state_dict(),
               {"role": "student", "net": "cnn", "net_kwargs": {"width": 4, "blocks": 2},
                "task": "classification", "num_outputs": 3, "in_channels": 1,
                "resolution": 8, "num_classes": 3, "config_hash": "0123456789abcdef",
                "provenance": {"git_sha": "cafe", "host": "h"}})
    rc, out, _ = run(["info", tmp_path / "model.pt"], capsys)
    assert rc == 0 and "model (student), format cgankd.model/1" in out
    assert "input shape: 1x8x8" in out and "0123456789abcdef" in out and "git_sha cafe" in out

    resume = Resume(tmp_path / "model.resume.pt", {"config": "x"}, desc="t", every=1,
                    seconds=None)
    resume.save({"step": 7, "steps": 20}, [{"step": 1}, {"step": 7}])
    rc, out, _ = run(["info", tmp_path / "model.resume.pt"], capsys)
    assert rc == 0 and "resume checkpoint" in out and "progress: step 7" in out
    assert f"resume key: {resume.key}" in out


def test_bad_input_is_one_line_and_exit_2(generators, tmp_path, capsys):
    cls, _ = generators
    (tmp_path / "notes.txt").write_text("hello")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    _split_file(tmp_path / "train.h5")
    cases = [(["info", tmp_path / "missing.h5"], "file not found"),
             (["info", tmp_path / "notes.txt"], "not a cgankd file"),
             (["info", tmp_path / "foreign.h5"], "not a cgankd file"),
             (["info", tmp_path / "plain.pt"], "not a cgankd file"),
             (["generate", tmp_path / "train.h5", "--per-class", 1, "--out", tmp_path / "o.h5"],
              "data split (train), not a generator file"),
             (["generate", cls, "--out", tmp_path / "o.h5"], "needs --per-class"),
             (["generate", cls, "--grid", 3, "--out", tmp_path / "o.h5"], "--per-class N, not")]
    for argv, message in cases:
        rc, out, err = run(argv, capsys)
        assert rc == 2 and out == "", argv
        assert err.count("\n") == 1 and message in err and str(argv[1]) in err, err
    with pytest.raises(SystemExit) as stop:  # argparse: one line too, same status
        main(["generate", str(cls), "--per-class", "2"])
    assert stop.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_entry_points(generators):
    script = [e.value for e in entry_points(group="console_scripts", name="cgankd")]
    assert script == ["cgankd.cli:main"]  # needs `pip install -e .` after pyproject changes
    done = subprocess.run([sys.executable, "-m", "cgankd", "info", str(generators[0])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "generator" in done.stdout


def test_info_tells_a_pool_and_a_fake_set_apart(generators, tmp_path, capsys):
    from cgankd.stages.filter_relabel import run as filter_relabel
    from cgankd.stages.subsample import run as subsample

    cls, _ = generators
    subsample(cls, None, tmp_path / "pool.h5", tmp_path / "pool.json", seed=0, progress=False,
              options={"method": "none", "per_class": 6, "batch_size": 8}, device="cpu")
    net = build_net("cnn", 3, 1, width=4, blocks=2)
    save_model(tmp_path / "teacher.pt", net.state_dict(),
               {"net": "cnn", "net_kwargs": {"width": 4, "blocks": 2}, "task": "classification",
                "num_outputs": 3, "in_channels": 1, "resolution": 8, "num_classes": 3})
    filter_relabel(tmp_path / "pool.h5", tmp_path / "teacher.pt", tmp_path / "fakes.h5",
                   fake_count=6, seed=0, options={"mode": "none", "relabel": False}, device="cpu")
    rc, out, _ = run(["info", tmp_path / "pool.h5", tmp_path / "fakes.h5"], capsys)
    assert rc == 0
    assert "pool.h5: fake pool (subsample none)" in out and "classes: 3 (0: 6, 1: 6, 2: 6)" in out
    assert "fakes.h5: fake set (filtered)" in out and "teacher_loss: float32 (6)" in out
