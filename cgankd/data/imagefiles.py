"""Reading image files (JPEG, PNG, ...) into one uint8 array, all of one shape."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cgankd.errors import CgankdInputError


def read_image_files(files: Sequence[Path], mode: str) -> np.ndarray:
    """Decode ``files`` to uint8 (N, C, H, W) in PIL ``mode`` ("L" or "RGB").

    Images of differing sizes are an error naming the first file that differs: silently
    resizing would hide a wrong folder (thumbnails mixed with originals, say).
    """
    from PIL import Image, UnidentifiedImageError

    if not files:
        return np.zeros((0, 1 if mode == "L" else 3, 1, 1), np.uint8)
    out = None
    for i, path in enumerate(tqdm(files, desc="reading images", unit="img",
                                  disable=len(files) < 2000, mininterval=2)):
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert(mode))
        except (OSError, UnidentifiedImageError) as err:
            raise CgankdInputError(f"{path}: unreadable image ({err})") from None
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        if out is None:
            out = np.empty((len(files), *arr.shape), np.uint8)
        elif arr.shape != out.shape[1:]:
            raise CgankdInputError(f"{path}: image shape {arr.shape[1:]} differs from "
                                   f"{out.shape[2:]} of {files[0]} (mixed image sizes)")
        out[i] = arr
    return out
