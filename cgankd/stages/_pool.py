"""The two passes over a fake pool that ``filter_relabel`` and ``select_rho`` share: the
teacher's score of every pooled fake (one scoring for both, so a rho the selection tries keeps
exactly the fakes the filter keeps at it), and the kept rows read back chunk by chunk.
"""

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from cgankd.conventions import LabelScale, to_float
from cgankd.filtering import teacher_scores
from cgankd.h5io import read_chunks


@torch.no_grad()
def _teacher_outputs(teacher: torch.nn.Module, images: torch.Tensor,
                     batch_size: int) -> torch.Tensor:
    """The teacher's outputs for one chunk of uint8 images, left on their device.

    The caller's chunks are a multiple of batch_size, so the batches are the pool's rows
    [k b, (k + 1) b) whatever the chunk size, and the outputs do not depend on it.
    """
    outs = [teacher(to_float(images[i:i + batch_size])).float()
            for i in range(0, len(images), batch_size)]
    return torch.cat(outs)


def score_pool(pool_h5: str | Path, teacher: torch.nn.Module, labels: np.ndarray, task: str,
               scale: LabelScale | None, batch_size: int, chunk_rows: int | None,
               device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    """(losses, teacher labels) of every pooled fake, one chunk of images at a time.

    A chunk's outputs cross to the host (a synchronisation) only once the next chunk has been
    read, so on a GPU the host reads chunk k + 1 while the device scores chunk k.
    """
    teacher.eval()
    losses, teacher_labels = [], []

    def collect(rows: range, outputs: torch.Tensor) -> None:
        chunk_losses, chunk_teacher = teacher_scores(outputs.cpu(), labels[rows.start:rows.stop],
                                                     task, scale)
        losses.append(chunk_losses)
        teacher_labels.append(chunk_teacher)

    pending = None  # (rows, outputs on the device) of the chunk being scored
    for rows, chunk in read_chunks(pool_h5, ["images"], rows=chunk_rows, multiple_of=batch_size,
                                   device=device):
        if pending is not None:
            collect(*pending)
        pending = rows, _teacher_outputs(teacher, chunk["images"], batch_size)
    if pending is None:  # an empty pool: the count check after selection names the problem
        dtype = np.int64 if task == "classification" else np.float32
        return torch.zeros(0), np.zeros(0, dtype)
    collect(*pending)
    return torch.cat(losses), np.concatenate(teacher_labels)


def kept_chunks(pool_h5: str | Path, kept: np.ndarray, names: Sequence[str],
                chunk_rows: int | None = None, multiple_of: int = 1
                ) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """(where in ``kept``, the kept rows of columns ``names``) per chunk of the pool that holds
    any; ``kept`` is sorted. Memory holds one chunk, whatever the pool's size."""
    for rows, chunk in read_chunks(pool_h5, list(names), rows=chunk_rows,
                                   multiple_of=multiple_of):
        first, last = np.searchsorted(kept, [rows.start, rows.stop])
        if first == last:
            continue
        local = torch.from_numpy(kept[first:last] - rows.start)
        yield slice(int(first), int(last)), {name: chunk[name][local].numpy() for name in names}
