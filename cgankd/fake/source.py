"""A trained generator seen as a source of images at given labels.

Labels here are the pipeline's training labels: class ids, or regression labels normalised to
[0, 1]. The CcGAN's label embedding (y2h, ILI) doubles as the DR model's label code for
regression; a generator with scalar label input (NLI) uses the label itself as a 1-d code.
"""

from pathlib import Path

import torch

from cgankd.conventions import LabelScale
from cgankd.gan.generate import load_generator


class FakeSource:
    def __init__(self, generator_path: str | Path, device: torch.device):
        self.generator, self.meta = load_generator(generator_path, device)
        self.device = device
        self.task = self.meta["task"]
        self.num_classes = self.meta.get("num_classes")
        self.label_scale = LabelScale.from_attrs(self.meta) if self.task == "regression" else None
        self._y2h = self.generator.y2h  # frozen with the generator; None without ILI
        kwargs = self.meta["generator_kwargs"]
        self.dim_z = int(kwargs["dim_z"])
        self.channels, self.resolution = int(kwargs["channels"]), int(kwargs["resolution"])

    @torch.no_grad()
    def images(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Float images in [-1, 1] at ``labels`` (one per label), on this source's device.

        z comes from the CPU ``generator``, so a seed gives the same images on any device.
        """
        z = torch.randn(len(labels), self.dim_z, generator=generator)
        return self.generator(z.to(self.device), labels.to(self.device))

    @property
    def label_code_dim(self) -> int:
        if self._y2h is None:
            return 1
        return int(self._y2h(torch.zeros(1, device=self.device)).shape[-1])

    def label_code(self, labels_norm: torch.Tensor) -> torch.Tensor:
        """Regression label code for the DR model: y2h(y) (ILI), else y as a 1-d vector."""
        labels_norm = labels_norm.float().to(self.device)
        if self._y2h is None:
            return labels_norm.reshape(-1, 1)
        with torch.no_grad():
            return self._y2h(labels_norm)
