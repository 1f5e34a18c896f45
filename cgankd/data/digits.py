"""The offline defaults, built from the 1,797 8x8 digits bundled with scikit-learn.

- ``digits``: 10-class classification; the generic splitter makes the labels scarce.
- ``digits_angle``: regression, like RC-49's yaw angle: each digit rotated by a continuous angle
  in [0, 90) degrees, the target being the angle. Training uses a few distinct angles with a few
  images each; test angles are drawn uniformly, so they include values never seen in training.
  Source digits are partitioned, so no test digit image is a rotated training image.
"""

import numpy as np
import torch
import torch.nn.functional as F

from cgankd.data.registry import LoadContext, Part, RawData, register_dataset
from cgankd.data.resize import resize_images
from cgankd.errors import CgankdInputError

CANVAS = 64  # digits are rotated on a 64-px canvas, then resized to data.resolution
DIGIT_SCALE = 0.7  # digit size relative to the canvas: 0.7 * sqrt(2) < 1, so no turn clips a corner


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]  # 0..16 -> 0..255
    return images, bunch.target.astype(np.int64)


@register_dataset("digits", "classification")
def load_digits(ctx: LoadContext) -> RawData:
    images, labels = _sklearn_digits()
    return RawData(task="classification",
                   train=Part(images, labels, np.arange(len(labels), dtype=np.int64)),
                   class_names=[str(k) for k in range(10)], source="sklearn.datasets.load_digits")


def rotate(images: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Rotate uint8 (N, 1, 8, 8) digits counter-clockwise by ``angles_deg`` on a CANVAS canvas."""
    size = int(round(CANVAS * DIGIT_SCALE))
    digit = resize_images(images, size).astype(np.float32)
    pad = (CANVAS - size) // 2
    canvas = np.zeros((len(images), 1, CANVAS, CANVAS), np.float32)
    canvas[:, :, pad:pad + size, pad:pad + size] = digit
    theta = torch.deg2rad(torch.as_tensor(angles_deg, dtype=torch.float32))
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    # affine_grid maps output to input coordinates: the inverse rotation turns the image by +theta
    mats = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    x = torch.from_numpy(canvas)
    grid = F.affine_grid(mats, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


DIGITS_ANGLE_DEFAULTS = {
    "n_train_angles": 30,  # distinct training angles, evenly spaced at (i + 0.5) * 90 / n
    "images_per_angle": 10,  # training images per angle (RC-49 has 25; scarce on purpose)
    "val_per_angle": 2,  # validation images per training angle, carved from the same pool
    "n_test": 1000,  # test images at uniform random angles in [0, 90)
    "test_source_fraction": 0.4,  # share of source digits reserved for test images
    "max_angle": 90.0,  # angles lie in [0, max_angle)
}


@register_dataset("digits_angle", "regression", DIGITS_ANGLE_DEFAULTS)
def load_digits_angle(ctx: LoadContext) -> RawData:
    opt = ctx.options
    images, _ = _sklearn_digits()
    rng = np.random.default_rng(ctx.seed)
    perm = rng.permutation(len(images))
    n_test_src = int(round(opt["test_source_fraction"] * len(images)))
    test_src, train_src = perm[:n_test_src], perm[n_test_src:]

    n_angles, per_angle, val_per = (opt["n_train_angles"], opt["images_per_angle"],
                                    opt["val_per_angle"])
    train_angles = (np.arange(n_angles) + 0.5) * opt["max_angle"] / n_angles
    need = per_angle + val_per
    if need > len(train_src):
        raise CgankdInputError(f"data.options: images_per_angle + val_per_angle = {need} exceeds "
                               f"the {len(train_src)} source digits kept for training")
    # each angle gets its own draw of source digits, so each digit appears at several angles
    src = np.stack([rng.choice(train_src, size=need, replace=False) for _ in train_angles])
    angles = np.repeat(train_angles, need).reshape(n_angles, need)
    is_val = np.zeros((n_angles, need), bool)
    is_val[:, per_angle:] = True

    def build(sources: np.ndarray, angle_values: np.ndarray, id_offset: int,
              ids: np.ndarray) -> Part:
        return Part(rotate(images[sources], angle_values), angle_values.astype(np.float32),
                    (id_offset + ids).astype(np.int64))

    flat_ids = np.arange(src.size).reshape(src.shape)
    train = build(src[~is_val], angles[~is_val], 0, flat_ids[~is_val])
    val = build(src[is_val], angles[is_val], 0, flat_ids[is_val])
    test_sources = rng.choice(test_src, size=opt["n_test"], replace=True)
    test_angles = rng.uniform(0.0, opt["max_angle"], size=opt["n_test"])
    test = build(test_sources, test_angles, src.size, np.arange(opt["n_test"]))
    return RawData(task="regression", train=train, val=val, test=test,
                   label_range=(0.0, float(opt["max_angle"])), label_unit="degrees",
                   source="sklearn.datasets.load_digits, rotated")

