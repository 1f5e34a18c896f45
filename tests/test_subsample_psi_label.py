"""subsample.options.psi_label: which label psi is conditioned on and the kept sample stored with.

Stubs stand in for the generator and the DR model so the test sees exactly which label codes
psi received: the stub generator paints each image with the label it was asked for, the stub
extractor reads it back (so the window check passes), and the stub psi records its codes.
"""

import h5py
import numpy as np
import pytest
import torch

from cgankd.conventions import LabelScale
from cgankd.errors import CgankdInputError
from cgankd.stage_options.fake import checked_subsample_options
from cgankd.stages import subsample as stage

KAPPA_BASE = 0.05
OPTS = {"label_grid": 3, "per_label": 6, "n_burnin": 4, "batch_size": 8, "max_batches": 50,
        "label_window": True, "zeta_mult": 1.0}


class StubSource:
    task, num_classes, channels, resolution = "regression", None, 1, 4
    label_scale = LabelScale(0.0, 90.0)
    meta = {"kappa_base": KAPPA_BASE}

    def __init__(self, *_):
        pass

    def images(self, labels, generator):
        """Images whose pixels are the label they were generated at, in [-1, 1]."""
        return (labels.reshape(-1, 1, 1, 1) * 2 - 1).expand(-1, 1, 4, 4).clone()

    def label_code(self, labels):
        return labels.reshape(-1, 1)


def _stubs(seen):
    def extractor(x):
        pred = (x.mean(dim=(1, 2, 3)) + 1) / 2  # the label the image was generated at
        return None, x.flatten(1), pred

    def psi(h, code):
        seen.append(code.reshape(-1).clone())
        return 0.5 + code.reshape(-1)  # depends on the code, so M and acceptance see it

    return lambda *_: (extractor, psi, None, {})


@pytest.mark.parametrize("psi_label", ["target", "drawn"])
def test_psi_label_picks_the_code_and_the_stored_label(tmp_path, monkeypatch, psi_label):
    seen = []
    monkeypatch.setattr(stage, "FakeSource", StubSource)
    monkeypatch.setattr(stage, "load_dre", _stubs(seen))
    pool = tmp_path / "pool.h5"
    stage.run("gen.pt", "dre.pt", pool, tmp_path / "stats.json",
              options={**OPTS, "psi_label": psi_label}, seed=0, device="cpu", progress=False)
    targets = (np.arange(3) + 0.5) / 3
    codes = torch.cat(seen).numpy()
    with h5py.File(pool, "r") as f:
        labels, target = f["labels"][()], f["target"][()]
    on_grid = np.isclose(codes[:, None], targets[None, :], atol=1e-6).any(axis=1)
    if psi_label == "target":  # every psi call at a grid target, every row stored with it
        assert on_grid.all()
        np.testing.assert_allclose(labels, target, atol=1e-4)
    else:  # the drawn y' of the window: off the grid, and the stored label is the drawn one
        assert not on_grid.any()
        assert not np.allclose(labels, target, atol=1e-4)
        assert (np.abs(labels - target) <= KAPPA_BASE * 90 + 1e-3).all()
    assert len(labels) == 3 * 6


def test_psi_label_default_is_published_and_unknown_values_are_named():
    assert checked_subsample_options({})["psi_label"] == "target"
    with pytest.raises(CgankdInputError, match=r"subsample\.options\.psi_label"):
        checked_subsample_options({"psi_label": "y"})
