"""quality.features: extractor: FID and the manifold scores in a feature space that is not the
label's. The train_quality_extractor stage trains the cDR-RS extractor architecture on the
real splits (regression: the sparse autoencoder; classification: the ResNet-34 trunk); the
quality stage measures in its features while the metric net still judges the labels."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cgankd.dre.dre_file import load_quality_extractor
from cgankd.errors import CgankdInputError
from cgankd.formats import QUALITY_EXTRACTOR, torch_kind_of
from cgankd.metrics import sample_quality
from cgankd.metrics.fid import embed_extractor, feature_stats, frechet_distance
from cgankd.stage_options.dre import DRE_DEFAULTS, EXTRACTOR_KEYS, checked_extractor_options
from cgankd.stage_options.plan import config_error
from cgankd.stages._training import train_model
from cgankd.stages.train_quality_extractor import run as train_quality_extractor
from toy_data import write_bar_splits, write_fake_set

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"extractor_width": 4,
           "extractor_recipe": {"steps": 30, "batch_size": 16, "eval_every": 10, "lr": 0.05,
                                "crop_pad": 0, "flip": False}}


@pytest.fixture(scope="module", params=["regression", "classification"])
def trained(request, tmp_path_factory):
    """Bar splits, a metric net and a quality extractor for one task."""
    task = request.param
    folder = tmp_path_factory.mktemp(f"qx_{task}")
    paths = write_bar_splits(folder, task)
    train_model(role="metric", train=paths["train"], val=paths["val"],
                model=folder / "metric.pt", history=folder / "metric.jsonl",
                net={"net": "cnn", "kwargs": {"width": 4, "blocks": 2}},
                recipe={"steps": 20, "batch_size": 16, "eval_every": 10, "crop_pad": 0,
                        "flip": False}, seed=0, progress=False)
    result = train_quality_extractor(paths["train"], paths["val"], folder / "extractor.pt",
                                     folder / "extractor.jsonl", options=OPTIONS, seed=1,
                                     device="cpu", progress=False)
    return task, folder, paths, result


def _images(path):
    import h5py
    with h5py.File(path, "r") as f:
        return f["images"][()], f["labels"][()]


def test_the_stage_writes_a_declared_file_that_loads_with_weights_only(trained):
    task, folder, _, result = trained
    blob = torch.load(folder / "extractor.pt", weights_only=True)
    assert torch_kind_of(blob) is QUALITY_EXTRACTOR
    assert blob["task"] == task and blob["seed"] == 1
    assert blob["options"]["extractor_width"] == 4
    assert "git_sha" in blob["provenance"]  # provenance inside the output, not in params
    assert result["extractor_val"] == blob["extractor_val"]
    history = (folder / "extractor.jsonl").read_text().splitlines()
    assert len(history) == 3  # eval_every 10 over 30 steps
    extractor, meta = load_quality_extractor(folder / "extractor.pt", "cpu")
    assert not extractor.training
    assert all(not p.requires_grad for p in extractor.parameters())
    assert meta["extractor_kwargs"]["feat_shape"] == [1, 8, 8]  # the images' own shape


def test_training_is_deterministic(trained, tmp_path):
    task, folder, paths, _ = trained
    train_quality_extractor(paths["train"], paths["val"], tmp_path / "again.pt",
                            tmp_path / "again.jsonl", options=OPTIONS, seed=1, device="cpu",
                            progress=False)
    first = torch.load(folder / "extractor.pt", weights_only=True)["extractor"]
    again = torch.load(tmp_path / "again.pt", weights_only=True)["extractor"]
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_quality_measures_in_the_extractor_and_judges_labels_with_the_metric_net(trained):
    task, folder, paths, _ = trained
    with_metric = sample_quality(folder / "metric.pt", paths["test"], paths["val"],
                                 reference_h5=paths["train"], device="cpu")
    with_extractor = sample_quality(folder / "metric.pt", paths["test"], paths["val"],
                                    reference_h5=paths["train"], device="cpu",
                                    extractor_path=folder / "extractor.pt")
    assert with_metric["feature_space"] == "metric_net"
    assert with_metric["extractor_model"] is None
    assert with_extractor["feature_space"] == "extractor"
    assert with_extractor["extractor_model"] == str(folder / "extractor.pt")
    assert with_extractor["feature_dim"] == 64  # C * H * W of the 8 px images
    assert with_metric["feature_dim"] != 64
    # FID by hand in the extractor's features
    extractor, _ = load_quality_extractor(folder / "extractor.pt", "cpu")
    real, fake = (embed_extractor(extractor, _images(p)[0], 7, "cpu")
                  for p in (paths["test"], paths["val"]))
    assert with_extractor["fid"] == pytest.approx(
        frechet_distance(*feature_stats(real), *feature_stats(fake)), rel=1e-6)
    assert with_extractor["fid"] != pytest.approx(with_metric["fid"], rel=1e-3)
    # the label judge is the metric net either way
    key = "label_score" if task == "regression" else "label_agreement"
    assert with_extractor[key] == with_metric[key]


def test_a_shifted_fake_set_is_far_in_the_extractor_space(trained):
    task, folder, paths, _ = trained
    images, labels = _images(paths["val"])
    shifted = write_fake_set(folder / "shifted.h5", np.clip(images.astype(int) + 120, 0, 255)
                             .astype(np.uint8), labels)
    same = sample_quality(folder / "metric.pt", paths["test"], paths["val"], device="cpu",
                          extractor_path=folder / "extractor.pt")
    far = sample_quality(folder / "metric.pt", paths["test"], shifted, device="cpu",
                         extractor_path=folder / "extractor.pt")
    assert far["fid"] > 3 * same["fid"]


def test_an_extractor_of_the_other_task_fails_with_one_line(trained, tmp_path):
    task, folder, paths, _ = trained
    other = "classification" if task == "regression" else "regression"
    other_paths = write_bar_splits(tmp_path, other)
    train_quality_extractor(other_paths["train"], other_paths["val"], tmp_path / "x.pt",
                            tmp_path / "x.jsonl", options=OPTIONS, seed=0, device="cpu",
                            progress=False)
    with pytest.raises(CgankdInputError, match=rf"x\.pt: a {other} extractor but .*metric\.pt "
                                               rf"is a {task} metric net"):
        sample_quality(folder / "metric.pt", paths["test"], paths["val"], device="cpu",
                       extractor_path=tmp_path / "x.pt")


def test_the_options_are_the_dre_extractors_and_only_those():
    opts = checked_extractor_options({})
    assert set(opts) == set(EXTRACTOR_KEYS)
    assert opts["extractor_width"] == DRE_DEFAULTS["extractor_width"]  # defined once
    with pytest.raises(CgankdInputError, match=r"quality\.extractor.*dr_hidden"):
        checked_extractor_options({"dr_hidden": [8]})
    with pytest.raises(CgankdInputError, match=r"quality\.extractor\.ae_sparsity"):
        checked_extractor_options({"ae_sparsity": -1})


def _config(**quality):
    from cgankd.config import load_schema
    from cgankd.config_files import load_config_file
    cfg = load_config_file(REPO / "config" / "experiments" / "digits_angle.yaml")
    cfg["quality"].update(quality)
    return cfg, load_schema(REPO / "config" / "schema.yaml")


def test_plan_time_checks_name_the_key():
    cfg, schema = _config(features="extractor", extractor={"bogus": 1})
    assert "quality.extractor" in config_error(cfg, schema)
    assert "bogus" in config_error(cfg, schema)
    cfg, schema = _config(features="inception")
    assert "inception" in config_error(cfg, schema)


def test_the_workflow_plans_the_extractor_only_when_asked(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "experiments" / "digits_angle.yaml").read_text())
    planned = {}
    for features in ("metric_net", "extractor"):
        cfg["quality"]["features"] = features
        path = tmp_path / f"{features}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s",
                              str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
                              "--configfile", str(path)], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        planned[features] = run.stdout
    assert "train_quality_extractor" not in planned["metric_net"]
    assert "train_quality_extractor" in planned["extractor"]
