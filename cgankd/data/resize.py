"""Resizing uint8 image batches to the configured resolution, in bounded-memory chunks."""

import numpy as np
import torch
import torch.nn.functional as F

CHUNK = 4096  # images per interpolation call: bounds the float32 copy to ~200 MB at 64 px RGB


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Bilinear resize of uint8 (N, C, H, W) to (N, C, resolution, resolution).

    Antialiasing is on, so downsizing (Tiny-ImageNet 64 -> 32) averages instead of aliasing;
    upsizing (digits 8 -> 16) is plain bilinear.
    """
    n, c, h, w = images.shape
    if (h, w) == (resolution, resolution):
        return images
    out = np.empty((n, c, resolution, resolution), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        x = torch.from_numpy(images[start:start + CHUNK]).float()
        y = F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                          align_corners=False, antialias=True)
        out[start:start + CHUNK] = y.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def to_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Convert grayscale <-> RGB when config asks for a channel count the source lacks."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    # ITU-R BT.601 luma, the usual RGB -> gray weights
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
    gray = (images.astype(np.float32) * weights).sum(axis=1, keepdims=True)
    return gray.round().clip(0, 255).astype(np.uint8)
