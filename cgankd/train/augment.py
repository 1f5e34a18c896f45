"""Batch augmentation for classifier and regressor training, vectorised over the batch.

Random crop after zero padding (a random translation by up to ``pad`` pixels) and horizontal
flips. Flips are off for label sets they would corrupt (digit classes, rotation angles).
"""

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by its own random offset in [-pad, pad]^2, zeros shifted in."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, *, crop_pad: int, flip: bool,
            generator: torch.Generator) -> torch.Tensor:
    x = random_crop(x, crop_pad, generator)
    return random_flip(x, generator) if flip else x
