"""Sample sheets: a batch of generated images tiled into one PNG, for eyes, not metrics."""

import os

import numpy as np
import torch
from PIL import Image

from cgankd.conventions import to_uint8
from cgankd.h5io import atomic_path

MIN_TILE = 48  # small images (16 px digits) are upscaled, nearest neighbour, to at least this
PAD = 2  # pixels of background between tiles


def save_grid(images: torch.Tensor, rows: int, path: str | os.PathLike) -> None:
    """Tile ``images`` (N, C, H, W) in [-1, 1], row-major, ``rows`` rows, into a PNG at ``path``."""
    pixels = to_uint8(images).cpu().numpy()  # (N, C, H, W)
    n, c, h, w = pixels.shape
    cols = -(-n // rows)
    scale = max(1, -(-MIN_TILE // max(h, w)))
    pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)
    h, w = h * scale, w * scale
    sheet = np.full((c, rows * (h + PAD) + PAD, cols * (w + PAD) + PAD), 255, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = PAD + r * (h + PAD), PAD + q * (w + PAD)
        sheet[:, top:top + h, left:left + w] = pixels[k]
    image = Image.fromarray(sheet[0] if c == 1 else sheet.transpose(1, 2, 0))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
