"""Batch augmentation for classifier and regressor training, vectorised over the batch.

Random crop after zero padding (a random translation by up to ``pad`` pixels) and horizontal
flips. Flips are off for label sets they would corrupt (digit classes, rotation angles).

Each augmented image is one of ``view_count`` fixed views of its source image (a translation
and a flip); ``augment_with_views`` returns which, so a frozen teacher's outputs can be looked
up per (image, view) instead of recomputed every step (``cgankd.kd.teacher_cache``).
"""

import torch
import torch.nn.functional as F


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image cropped at offset (dy, dx) in [0, 2 pad] of its zero-padded copy."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def _offsets(n: int, pad: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    return dy, dx


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by its own random offset in [-pad, pad]^2, zeros shifted in."""
    if pad <= 0:
        return x
    dy, dx = _offsets(len(x), pad, generator)
    return shift(x, dy.to(x.device), dx.to(x.device), pad)


def _flips(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < 0.5


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = _flips(len(x), generator).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def view_count(crop_pad: int, flip: bool) -> int:
    """How many distinct views ``augment`` makes of one image."""
    return (2 * max(crop_pad, 0) + 1) ** 2 * (2 if flip else 1)


def augment_with_views(x: torch.Tensor, *, crop_pad: int, flip: bool,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment(x)`` and each image's view id in [0, view_count): the same random draws, in
    the same order, so the images are those ``augment`` makes."""
    n, pad = len(x), max(crop_pad, 0)
    dy = dx = torch.zeros(n, dtype=torch.long)
    if pad > 0:
        dy, dx = _offsets(n, pad, generator)
        x = shift(x, dy.to(x.device), dx.to(x.device), pad)
    views = dy * (2 * pad + 1) + dx
    if flip:
        flips = _flips(n, generator)
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(3), x)
        views = views * 2 + flips.long()
    return x, views


def view_of(x: torch.Tensor, view: int, *, crop_pad: int, flip: bool) -> torch.Tensor:
    """Every image of ``x`` at one fixed view id (the inverse of the id ``augment_with_views``
    assigns)."""
    pad = max(crop_pad, 0)
    flipped = False
    if flip:
        view, flipped = divmod(view, 2)
    dy, dx = divmod(view, 2 * pad + 1)
    n = len(x)
    if pad > 0:
        x = shift(x, torch.full((n,), dy, device=x.device), torch.full((n,), dx, device=x.device),
                  pad)
    return x.flip(3) if flipped else x


def augment(x: torch.Tensor, *, crop_pad: int, flip: bool,
            generator: torch.Generator) -> torch.Tensor:
    return augment_with_views(x, crop_pad=crop_pad, flip=flip, generator=generator)[0]
