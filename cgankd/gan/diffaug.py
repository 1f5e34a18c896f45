"""DiffAugment: differentiable augmentations applied to every image the discriminator sees.

With little data the discriminator memorises the real set and GAN training collapses;
augmenting both real and fake images with the *same* differentiable transforms (in the D step
and in the G step) keeps D from overfitting while the gradient still reaches the generator.

Images are float in [-1, 1], shape (B, C, H, W), C = 1 or 3. Every transform draws one random
setting per sample, from ``generator`` when given (a CPU ``torch.Generator``; the draws are
moved to the images' device) or from torch's global RNG otherwise.
"""

from collections.abc import Callable

import torch

from cgankd.errors import CgankdInputError

TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the image size
CUTOUT_RATIO = 1 / 2  # side of the erased square, as a fraction of the image size

Augment = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _uniform(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    if generator is None:
        return torch.rand(*shape, device=x.device, dtype=x.dtype)
    return torch.rand(*shape, generator=generator).to(device=x.device, dtype=x.dtype)


def _integers(x: torch.Tensor, generator: torch.Generator | None, low: int, high: int,
              n: int) -> torch.Tensor:
    """n integers uniform in [low, high)."""
    if generator is None:
        return torch.randint(low, high, (n,), device=x.device)
    return torch.randint(low, high, (n,), generator=generator).to(x.device)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add one offset in [-0.5, 0.5) per sample."""
    return x + (_uniform(x, generator, x.shape[0], 1, 1, 1) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each pixel's distance from its channel mean by a factor in [0, 2); no-op on gray."""
    if x.shape[1] == 1:
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator, x.shape[0], 1, 1, 1) * 2) + mean


def contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's distance from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator, x.shape[0], 1, 1, 1) + 0.5) + mean


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return contrast(saturation(brightness(x, generator), generator), generator)


def translation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to 1/8 of its size in each direction, filling with zeros."""
    b, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _integers(x, generator, -sy, sy + 1, b)
    dx = _integers(x, generator, -sx, sx + 1, b)
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy))
    # Output pixel (i, j) of sample k reads padded pixel (i + sy - dy_k, j + sx - dx_k).
    rows = torch.arange(h, device=x.device)[None, :] + sy - dy[:, None]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] + sx - dx[:, None]  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    moved = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one square of half the image size per sample, centred anywhere in the image."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = _integers(x, generator, 0, h, b) - size_y // 2
    left = _integers(x, generator, 0, w, b) - size_x // 2
    rows = torch.arange(h, device=x.device)[None, :] - top[:, None]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] - left[:, None]
    in_rows = (rows >= 0) & (rows < size_y)
    in_cols = (cols >= 0) & (cols < size_x)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # (B, H, W)
    return x * keep[:, None].to(x.dtype)


POLICIES: dict[str, Augment] = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[Augment]:
    """'color,translation,cutout' -> the transforms in that order; '' -> none."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise CgankdInputError(f"unknown DiffAugment policy {unknown[0]!r} in {policy!r}; "
                               f"known: {', '.join(POLICIES)}")
    return [POLICIES[n] for n in names]


def diff_augment(x: torch.Tensor, policy: str,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the transforms named in ``policy`` (comma-separated) to ``x``; '' returns ``x``."""
    for transform in parse_policy(policy):
        x = transform(x, generator)
    return x
