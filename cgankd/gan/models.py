"""Conditional GAN backbones, registered in ``GANS`` by name.

One ResNet generator and one ResNet projection discriminator serve every backbone; a backbone
fixes the switches that distinguish the published architectures:

- ``biggan``: spectral norm in G and D, optional shared class embedding feeding every
  conditional BN (BigGAN, classification);
- ``sngan``: spectral norm in D only, per-layer conditioning (SNGAN, the CcGAN backbone);
- ``sagan``: spectral norm in G and D plus a self-attention block in each (SAGAN).

Every backbone takes every kind of condition, so the task and the label input decide it:
``class`` (class ids: conditional BN + projection D), ``vector`` (CcGAN-ILI: the label
embedding h = y2h(y) feeds conditional BN and D's projection) or ``scalar`` (CcGAN-NLI: the
normalised label is added to G's first dense output and D projects a linear embedding of it).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.gan.layers import ConditionalBatchNorm2d, SelfAttention, conv, embedding, linear
from cgankd.registry import Registry

CONDITIONS = ("class", "vector", "scalar")
BOTTOM = 4  # the generator starts from a 4x4 map; the discriminator pools down to 4x4

# Width multipliers of ``ch`` per block when a config gives none. Generator: one entry per
# upsampling block, from the 4x4 bottom up (the bottom map has mults[0] * ch channels).
# Discriminator: one entry per block, from the image down. 32 px and 64 px follow BigGAN;
# 16 px is the offline digits default, kept narrow so that ~2000 iterations fit in minutes on
# two CPU cores (measured: wider [4, 2] / [2, 4, 4] costs 2.5x per iteration for no better
# samples).
DEFAULT_G_MULTS = {8: [4], 16: [2, 1], 32: [4, 4, 4], 64: [16, 8, 4, 2], 128: [16, 16, 8, 4, 2]}
DEFAULT_D_MULTS = {8: [4, 4], 16: [1, 2, 2], 32: [4, 4, 4, 4], 64: [1, 2, 4, 8, 16],
                   128: [1, 2, 4, 8, 16, 16]}


def upsampling_blocks(resolution: int) -> int:
    """How many 2x upsamplings take the 4x4 bottom to ``resolution`` (a power of two >= 8)."""
    blocks = math.log2(resolution / BOTTOM) if resolution > 0 else -1
    if blocks < 1 or blocks != int(blocks):
        raise CgankdInputError(f"GAN resolution {resolution} is not a power of two >= 8")
    return int(blocks)


def default_mults(table: dict[int, list[int]], resolution: int) -> list[int]:
    if resolution in table:
        return list(table[resolution])
    raise CgankdInputError(f"no default width multipliers for resolution {resolution}; "
                           f"set g_mults/d_mults (defaults exist for {sorted(table)})")


def check_native_resolution(native: int | None, resolution: int) -> int:
    """The resolution G draws at: ``native`` (checked) or, when None, the data's."""
    if native is None:
        return resolution
    if not isinstance(native, int) or native > resolution:
        raise CgankdInputError(f"gan.native_resolution {native!r} must be an integer <= the "
                               f"data resolution {resolution}")
    upsampling_blocks(native)  # a power of two >= 8
    return native


def upsample_like_data(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """The resize ``cgankd.data.resize.resize_images`` applies to the real images (bilinear,
    antialiased), on G's float output: images drawn at the source's native size (8x8 digits)
    reach D through the same interpolation as the real ones, so G cannot get their blur wrong.
    Bilinear weights are convex, so the output stays in tanh's [-1, 1]. Computed in float32
    (then cast back): the antialiased kernel has no bfloat16 CPU implementation, so under bf16
    autocast (``accel.amp``) it would fail, and fp32 is what the real images got."""
    return nn.functional.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                                     align_corners=False, antialias=True).to(x.dtype)


def _check_condition(condition: str, num_classes: int, dim_cond: int) -> None:
    if condition not in CONDITIONS:
        raise CgankdInputError(f"unknown GAN condition {condition!r}; known: {CONDITIONS}")
    if condition == "class" and num_classes < 1:
        raise CgankdInputError("a class-conditional GAN needs num_classes >= 1")
    if condition == "vector" and dim_cond < 1:
        raise CgankdInputError("a vector-conditional GAN needs dim_cond >= 1")


class GBlock(nn.Module):
    """Pre-activation ResNet up-block: CBN-ReLU-up-conv-CBN-ReLU-conv, shortcut up-conv1x1."""

    def __init__(self, in_ch: int, out_ch: int, *, sn: bool, **cbn):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_ch, sn=sn, **cbn)
        self.conv1 = conv(in_ch, out_ch, sn=sn)
        self.bn2 = ConditionalBatchNorm2d(out_ch, sn=sn, **cbn)
        self.conv2 = conv(out_ch, out_ch, sn=sn)
        self.shortcut = conv(in_ch, out_ch, 1, sn=sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        h = nn.functional.relu(self.bn1(x, cond))
        h = self.conv1(nn.functional.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.conv2(nn.functional.relu(self.bn2(h, cond)))
        return h + self.shortcut(up)


class DBlock(nn.Module):
    """ResNet down-block with spectral norm.

    The first block sees raw pixels, so it has no leading ReLU and pools before its 1x1
    shortcut conv (the SNGAN "optimised" block); later blocks are pre-activation.
    """

    def __init__(self, in_ch: int, out_ch: int, *, downsample: bool, first: bool):
        super().__init__()
        self.first, self.downsample = first, downsample
        self.conv1 = conv(in_ch, out_ch)
        self.conv2 = conv(out_ch, out_ch)
        self.shortcut = conv(in_ch, out_ch, 1) if (in_ch != out_ch or downsample) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else nn.functional.relu(x)
        h = self.conv2(nn.functional.relu(self.conv1(h)))
        h = self._pool(h)
        if self.shortcut is None:
            return h + x
        skip = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + skip


class ResNetGenerator(nn.Module):
    """z (B, dim_z) and a condition -> images (B, channels, resolution, resolution) in [-1, 1].

    ``cond`` is class ids (B,) long, label embeddings (B, dim_cond) or normalised labels (B,),
    per ``condition``. With ``hier`` (BigGAN's hierarchical z, only where the conditional BNs
    take a vector) z is cut into one chunk for the first dense layer and one per block, each
    block's BNs seeing [condition vector; its z chunk]: z then shapes every scale, not just
    the bottom map, which keeps samples of one class diverse.
    """

    def __init__(self, *, resolution: int, channels: int, dim_z: int, ch: int,
                 mults: list[int] | None = None, condition: str = "class",
                 num_classes: int = 0, dim_cond: int = 0, dim_shared: int = 0,
                 hier: bool = False, spectral_norm: bool = True,
                 attention_res: int | None = None, native_resolution: int | None = None):
        super().__init__()
        _check_condition(condition, num_classes, dim_cond)
        native = check_native_resolution(native_resolution, resolution)
        self.resolution, self.native_resolution = resolution, native
        n_blocks = upsampling_blocks(native)
        mults = list(mults) if mults else default_mults(DEFAULT_G_MULTS, native)
        if len(mults) != n_blocks:
            raise CgankdInputError(f"g_mults {mults} has {len(mults)} entries; resolution "
                                   f"{native} needs {n_blocks} (one per upsampling block)")
        widths = [ch * m for m in mults]
        self.condition, self.dim_z, self.bottom_ch = condition, dim_z, widths[0]
        self.shared = None
        if condition == "class" and dim_shared > 0:
            # BigGAN: one class embedding shared by every CBN layer, each mapping it linearly.
            self.shared = nn.Embedding(num_classes, dim_shared)
            cbn = {"cond_dim": dim_shared}
        elif condition == "class":
            cbn = {"num_classes": num_classes}
        elif condition == "vector":
            cbn = {"cond_dim": dim_cond}
        else:
            cbn = {}  # NLI: the label enters once, at the first dense layer
        self.z_chunks = [dim_z]
        if hier:
            if "cond_dim" not in cbn:
                raise CgankdInputError("hier: true needs vector-conditioned BN (biggan with "
                                       "dim_shared > 0, or label_input ili); set hier: false")
            chunk = dim_z // (n_blocks + 1)
            if chunk < 1:
                raise CgankdInputError(f"dim_z {dim_z} is too small to split over "
                                       f"{n_blocks + 1} hierarchical chunks")
            self.z_chunks = [dim_z - chunk * n_blocks] + [chunk] * n_blocks
            cbn["cond_dim"] += chunk
        self.linear = linear(self.z_chunks[0], widths[0] * BOTTOM * BOTTOM, sn=spectral_norm)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        size, in_ch = BOTTOM, widths[0]
        for i, out_ch in enumerate(widths):
            self.blocks.append(GBlock(in_ch, out_ch, sn=spectral_norm, **cbn))
            size, in_ch = size * 2, out_ch
            if attention_res == size:
                self.attention[str(i)] = SelfAttention(out_ch, sn=spectral_norm)
        self.out_bn = nn.BatchNorm2d(in_ch)
        self.out_conv = conv(in_ch, channels, sn=spectral_norm)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.shared is not None:
            cond = self.shared(cond)
        z_first, *z_blocks = torch.split(z, self.z_chunks, dim=1)
        h = self.linear(z_first)
        if self.condition == "scalar":
            h = h + cond.view(-1, 1).to(h.dtype)
            cond = None
        h = h.view(z.shape[0], self.bottom_ch, BOTTOM, BOTTOM)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([cond, z_blocks[i]], dim=1) if z_blocks else cond)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        x = torch.tanh(self.out_conv(nn.functional.relu(self.out_bn(h))))
        if self.native_resolution != self.resolution:
            x = upsample_like_data(x, self.resolution)
        return x


class ResNetDiscriminator(nn.Module):
    """Images and a condition -> one logit per image (B,), with a projection head.

    logit = w . phi(x) + <e(c), phi(x)>, phi(x) the ReLU'd feature summed over positions and
    e(c) a class embedding, a linear map of the label embedding (ILI) or of the scalar label
    (NLI): the projection discriminator of Miyato & Koyama.
    """

    def __init__(self, *, resolution: int, channels: int, ch: int,
                 mults: list[int] | None = None, condition: str = "class",
                 num_classes: int = 0, dim_cond: int = 0, attention_res: int | None = None):
        super().__init__()
        _check_condition(condition, num_classes, dim_cond)
        upsampling_blocks(resolution)  # validates the resolution
        mults = list(mults) if mults else default_mults(DEFAULT_D_MULTS, resolution)
        widths = [ch * m for m in mults]
        self.condition = condition
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        size, in_ch = resolution, channels
        for i, out_ch in enumerate(widths):
            down = size > BOTTOM
            self.blocks.append(DBlock(in_ch, out_ch, downsample=down, first=i == 0))
            size, in_ch = (size // 2 if down else size), out_ch
            if attention_res == size and not self.attention:
                self.attention[str(i)] = SelfAttention(out_ch)
        self.linear = linear(in_ch, 1)
        if condition == "class":
            self.project = embedding(num_classes, in_ch)
        else:
            self.project = linear(dim_cond if condition == "vector" else 1, in_ch, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        feature = nn.functional.relu(h).sum(dim=(2, 3))
        if self.condition == "scalar":
            cond = cond.view(-1, 1).to(feature.dtype)
        return self.linear(feature).squeeze(1) + (self.project(cond) * feature).sum(dim=1)


class GanBackbone(NamedTuple):
    """Factories of one backbone's generator and discriminator from the common kwargs."""

    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]


GANS = Registry("GAN backbone")


def _biggan_generator(**kw) -> nn.Module:
    return ResNetGenerator(spectral_norm=True, **kw)


def _sngan_generator(*, dim_shared: int = 0, hier: bool = False,
                     attention_res: int | None = None, **kw) -> nn.Module:
    return ResNetGenerator(spectral_norm=False, dim_shared=0, hier=False, attention_res=None,
                           **kw)


def _sngan_discriminator(*, attention_res: int | None = None, **kw) -> nn.Module:
    return ResNetDiscriminator(attention_res=None, **kw)


def _attention_at(resolution: int, attention_res: int | None) -> int:
    return attention_res or resolution // 2  # SAGAN: attend on a half-resolution feature map


def _sagan_generator(*, dim_shared: int = 0, hier: bool = False,
                     attention_res: int | None = None, **kw) -> nn.Module:
    drawn_at = kw.get("native_resolution") or kw["resolution"]  # the maps G's blocks make
    return ResNetGenerator(spectral_norm=True, dim_shared=0, hier=False,
                           attention_res=_attention_at(drawn_at, attention_res), **kw)


def _sagan_discriminator(*, attention_res: int | None = None, **kw) -> nn.Module:
    return ResNetDiscriminator(attention_res=_attention_at(kw["resolution"], attention_res), **kw)


GANS.register("biggan")(GanBackbone(_biggan_generator, ResNetDiscriminator))
GANS.register("sngan")(GanBackbone(_sngan_generator, _sngan_discriminator))
GANS.register("sagan")(GanBackbone(_sagan_generator, _sagan_discriminator))


def build_generator(backbone: str, **kwargs) -> nn.Module:
    """The ``backbone``'s generator from JSON-able kwargs (what ``generator.pt`` stores)."""
    return GANS.get(backbone).generator(**kwargs)


def build_discriminator(backbone: str, **kwargs) -> nn.Module:
    return GANS.get(backbone).discriminator(**kwargs)


class LabelledGenerator(nn.Module):
    """G(z, y) on the labels the pipeline uses: class ids, or labels normalised to [0, 1].

    Holds the label encoder (CcGAN-ILI's frozen y2h) beside the generator, so a loaded
    generator samples from labels alone.
    """

    def __init__(self, generator: nn.Module, y2h: nn.Module | None = None):
        super().__init__()
        self.generator = generator
        self.y2h = y2h

    def encode(self, labels: torch.Tensor) -> torch.Tensor:
        return encode_labels(labels, self.generator.condition, self.y2h)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.generator(z, self.encode(labels))


def encode_labels(labels: torch.Tensor, condition: str, y2h: nn.Module | None) -> torch.Tensor:
    """Pipeline labels -> the condition G and D take (class ids, scalars or y2h embeddings)."""
    if condition == "class":
        return labels.long()
    if condition == "scalar":
        return labels.float()
    with torch.no_grad():  # y2h is pretrained and frozen
        return y2h(labels.float())
