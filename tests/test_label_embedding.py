"""CcGAN-ILI pretraining as the authors run it (issue 13, "y2h trained as the authors do"):
SGD with momentum, weight decay and step decay for the regressor and y2h, y2h over the
distinct training labels (cGAN-KD RC49/CcGAN-based_KD/train_net_for_label_embed.py at 75408cd),
beside the Adam-over-every-label way the digits default keeps."""

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from cgankd.errors import CgankdInputError
from cgankd.gan import label_embedding
from cgankd.gan.label_embedding import ili_optimiser, pretrain_label_embedding
from cgankd.stage_options.gan import checked_gan_options
from toy_data import toy_split

TINY_ILI = {"ili_width": 0.125, "ili_blocks": [1, 1, 1, 1], "ili_regressor_epochs": 10,
            "ili_y2h_epochs": 10, "ili_batch_size": 64}
PUBLISHED = {"ili_optimizer": "sgd", "ili_lr": 0.01, "ili_momentum": 0.9,
             "ili_weight_decay": 1e-4, "ili_regressor_milestones": [0.3, 0.6],
             "ili_y2h_milestones": [0.3, 0.5, 0.7], "ili_y2h_labels": "distinct"}


def _split():
    """24 images at 4 distinct angles (6 each): one batch per epoch in both steps."""
    labels = np.repeat(np.array([10.0, 30.0, 50.0, 70.0], dtype=np.float32), 6)
    return toy_split(task="regression", channels=3, labels=labels)


def _run(options):
    return pretrain_label_embedding(_split(), {**TINY_ILI, **options}, torch.device("cpu"),
                                    generator=torch.Generator().manual_seed(0), progress=False)


def test_the_authors_way_steps_sgd_with_their_momentum_decay_and_schedule():
    steps = []

    def record(optimiser, args, kwargs):
        group = optimiser.param_groups[0]
        steps.append((type(optimiser).__name__, group["lr"], group.get("momentum"),
                      group["weight_decay"]))
    handle = register_optimizer_step_pre_hook(record)
    try:
        _run(PUBLISHED)
    finally:
        handle.remove()
    assert {(name, momentum, decay) for name, _, momentum, decay in steps} == {
        ("SGD", 0.9, 1e-4)}
    lrs = [lr for _, lr, _, _ in steps]
    # regressor: x0.1 at epochs 3 and 6 of 10; y2h: at 3, 5 and 7 of 10 (one step per epoch)
    regressor = [0.01] * 3 + [1e-3] * 3 + [1e-4] * 4
    y2h = [0.01] * 3 + [1e-3] * 2 + [1e-4] * 2 + [1e-5] * 3
    assert lrs == pytest.approx(regressor + y2h)


def test_the_adam_way_keeps_a_constant_lr_without_milestones():
    steps = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: steps.append((type(opt).__name__, opt.param_groups[0]["lr"])))
    try:
        _run({"ili_optimizer": "adam", "ili_lr": 1e-3})
    finally:
        handle.remove()
    assert steps == [("Adam", 1e-3)] * 20


def test_ili_optimiser_builds_the_named_optimiser():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = ili_optimiser(params, checked_gan_options(PUBLISHED))
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults["lr"], sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == (
        0.01, 0.9, 1e-4)
    assert isinstance(ili_optimiser(params, checked_gan_options({})), torch.optim.Adam)


@pytest.mark.parametrize("labels, per_epoch", [("distinct", 4), ("all", 24)])
def test_y2h_sees_each_distinct_label_once_per_epoch_or_every_image_label(monkeypatch, labels,
                                                                          per_epoch):
    seen = []
    forward = label_embedding.Y2H.forward

    def spy(self, y):
        seen.append(y.detach().clone())
        return forward(self, y)
    monkeypatch.setattr(label_embedding.Y2H, "forward", spy)
    _run({"ili_y2h_labels": labels, "ili_label_noise": 0.0, "ili_y2h_epochs": 3})
    assert [len(y) for y in seen] == [per_epoch] * 3  # one batch per epoch
    distinct = torch.unique(seen[0])
    assert len(distinct) == 4
    for y in seen:
        assert torch.equal(torch.sort(y).values,
                           distinct if labels == "distinct" else distinct.repeat_interleave(6))


def test_y2h_batch_size_is_its_own(monkeypatch):
    sizes = []
    forward = label_embedding.Y2H.forward
    monkeypatch.setattr(label_embedding.Y2H, "forward",
                        lambda self, y: sizes.append(len(y)) or forward(self, y))
    _run({"ili_y2h_labels": "all", "ili_y2h_batch_size": 8, "ili_y2h_epochs": 1})
    assert sizes == [8, 8, 8]  # 24 labels in batches of 8, not one batch of ili_batch_size 64


@pytest.mark.parametrize("key, value", [
    ("ili_optimizer", "rmsprop"), ("ili_y2h_labels", "unique"), ("ili_momentum", 1.0),
    ("ili_weight_decay", -1e-4), ("ili_lr_decay", 0), ("ili_y2h_batch_size", 0),
    ("ili_regressor_milestones", [60, 120]), ("ili_y2h_milestones", 0.3),
])
def test_bad_ili_options_name_their_key(key, value):
    with pytest.raises(CgankdInputError, match=f"gan.options.{key}"):
        checked_gan_options({key: value})
