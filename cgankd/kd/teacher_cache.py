"""A frozen teacher's outputs for every training image under every augmentation view.

Vanilla KD needs only the teacher's logits, and a frozen teacher in eval mode gives one image
the same logits every time it sees the same view of it. With few views (digits: 25
translations, no flips) and many steps, computing every (image, view) once is far cheaper than
a teacher forward pass per step: on the digits default a KD student's steps cost several
times a no-KD student's, nearly all of it the 8x wider teacher. Methods that compare features
(FitNet, AT, CRD, ...) still run the teacher live.
"""

import torch

from cgankd.accel import Accel
from cgankd.train.augment import view_count, view_of
from cgankd.train.tensorset import TensorSet

MAX_TABLE_BYTES = 512 * 2**20  # auto never holds a larger table (CIFAR-100 would need GBs)


def worth_caching(n_images: int, n_views: int, n_outputs: int, steps: int,
                  batch_size: int) -> bool:
    """Auto: the table costs fewer teacher passes than live KD would, and fits in memory."""
    cached, live = n_images * n_views, steps * min(batch_size, n_images)
    return cached <= live // 2 and cached * n_outputs * 4 <= MAX_TABLE_BYTES


class TeacherTable:
    """``table(rows, views)`` -> the teacher's outputs for training-set ``rows`` at ``views``."""

    def __init__(self, teacher: torch.nn.Module, train: TensorSet, *, crop_pad: int, flip: bool,
                 batch_size: int, accel: Accel | None = None):
        teacher.eval()
        chunks = []
        with torch.no_grad():
            for start in range(0, len(train), batch_size):
                rows = torch.arange(start, min(start + batch_size, len(train)),
                                    device=train.images.device)
                images = train.batch(rows)[0]  # converted once, shifted and flipped per view
                views = []
                for view in range(view_count(crop_pad, flip)):
                    x = view_of(images, view, crop_pad=crop_pad, flip=flip)
                    if accel is None:
                        views.append(teacher(x).float())
                    else:
                        with accel.autocast():
                            views.append(teacher(accel.prepare_input(x)).float())
                chunks.append(torch.stack(views, 1))
        row = train.row.cpu()
        if not torch.equal(torch.sort(row).values, torch.arange(len(row))):
            raise ValueError("a teacher table needs the set's row numbers to be 0..N-1")
        order = torch.argsort(row).to(train.images.device)
        self.table = torch.cat(chunks)[order]  # (N, views, outputs): table[r] is row r's

    def __call__(self, rows: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        return self.table[rows, views.to(self.table.device)]


def teacher_table_for(objective, train: TensorSet, recipe, steps: int,
                      accel: Accel | None) -> "TeacherTable | None":
    """The table a run uses under ``recipe['teacher_cache']``, or None (teacher runs live)."""
    choice = recipe["teacher_cache"]
    if choice is False or not objective.teacher_logits_only:
        return None
    crop_pad, flip = int(recipe["crop_pad"]), bool(recipe["flip"])
    if choice == "auto":
        first = torch.zeros(1, dtype=torch.long, device=train.images.device)
        with torch.no_grad():
            n_outputs = int(objective.teacher.eval()(train.batch(first)[0]).shape[1])
        if not worth_caching(len(train), view_count(crop_pad, flip), n_outputs, steps,
                             int(recipe["batch_size"])):
            return None
    return TeacherTable(objective.teacher, train, crop_pad=crop_pad, flip=flip,
                        batch_size=int(recipe["eval_batch_size"]), accel=accel)
