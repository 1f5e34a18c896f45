"""The teacher table: per-(image, view) teacher outputs equal the live teacher's on the same
augmented images, and a KD student trained with it matches one trained with the live teacher."""

import copy

import pytest
import torch

from cgankd.kd.objective import DistillObjective
from cgankd.kd.teacher_cache import TeacherTable, worth_caching
from cgankd.nets import build_net
from cgankd.train.augment import augment, augment_with_views, view_count, view_of
from cgankd.train.recipe import checked_recipe
from cgankd.train.trainer import fit
from cgankd.errors import CgankdInputError
from toy_data import bar_images


@pytest.mark.parametrize("crop_pad, flip", [(2, False), (1, True), (0, True), (0, False)])
def test_views_reproduce_augment(crop_pad, flip):
    x = torch.randn(16, 1, 8, 8)
    out, views = augment_with_views(x, crop_pad=crop_pad, flip=flip,
                                    generator=torch.Generator().manual_seed(3))
    same = augment(x, crop_pad=crop_pad, flip=flip, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, same)  # the same draws, in the same order, as augment
    assert views.min() >= 0 and views.max() < view_count(crop_pad, flip)
    for i in range(len(x)):
        assert torch.equal(view_of(x[i:i + 1], int(views[i]), crop_pad=crop_pad, flip=flip)[0],
                           out[i])


def test_table_equals_live_teacher_on_augmented_batches():
    train = bar_images(n=40)
    teacher = build_net("cnn", 3, 1, width=4, blocks=2).eval()
    table = TeacherTable(teacher, train, crop_pad=2, flip=False, batch_size=16)
    assert table.table.shape == (40, 25, 3)
    rows = torch.tensor([3, 17, 39, 0])
    x, _, idx = train.batch(rows)
    aug, views = augment_with_views(x, crop_pad=2, flip=False,
                                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        live = teacher(aug)
    torch.testing.assert_close(table(idx, views), live, rtol=1e-5, atol=1e-6)


def test_kd_student_with_table_matches_live_teacher(tmp_path):
    train, val = bar_images(n=48), bar_images(n=16, seed=1)
    teacher = build_net("cnn", 3, 1, width=4, blocks=2).eval()
    results = {}
    for cache in (False, True):
        torch.manual_seed(0)
        student = build_net("cnn", 3, 1, width=2, blocks=2)
        objective = DistillObjective("kd", task="classification", student=student,
                                     teacher=teacher, sample_input=train.batch(torch.arange(2))[0],
                                     n_data=len(train))
        recipe = checked_recipe({"steps": 12, "batch_size": 8, "eval_every": 6, "crop_pad": 1,
                                 "flip": True, "teacher_cache": cache}, "r")
        fit(objective, student, train, val, recipe, task="classification", label_scale=None,
            device=torch.device("cpu"), seed=0, checkpoint_path=tmp_path / f"{cache}.pt",
            log_path=tmp_path / f"{cache}.jsonl", fingerprint="f", progress=False)
        assert (objective.teacher_table is not None) == cache
        results[cache] = copy.deepcopy(student.state_dict())
    for key, value in results[False].items():
        torch.testing.assert_close(results[True][key], value, rtol=1e-4, atol=1e-5)


def test_auto_rule_and_bad_choice():
    # digits default: 1,200 images x 25 views against 4,000 steps x 64: worth it
    assert worth_caching(1200, 25, 10, 4000, 64)
    # CIFAR-10 with flips: 60,000 x 162 views against 240 epochs of 50k: not worth it
    assert not worth_caching(60000, 162, 100, 240 * 50000 // 128, 128)
    with pytest.raises(CgankdInputError, match="teacher_cache"):
        checked_recipe({"teacher_cache": "yes"}, "students.recipe")
