"""Building blocks of the GAN backbones: spectral-normed layers, conditional BN, self-attention.

Spectral normalisation bounds each layer's Lipschitz constant, the standard way to keep a
hinge-loss discriminator (and, in BigGAN/SAGAN, the generator) well conditioned.
"""

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return spectral_norm(module) if enabled else module


def conv(in_ch: int, out_ch: int, kernel: int = 3, *, sn: bool = True, bias: bool = True
         ) -> nn.Module:
    """'Same' convolution (odd kernel), optionally spectral-normed."""
    return maybe_sn(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias), sn)


def linear(in_features: int, out_features: int, *, sn: bool = True, bias: bool = True
           ) -> nn.Module:
    return maybe_sn(nn.Linear(in_features, out_features, bias=bias), sn)


def embedding(num: int, dim: int, *, sn: bool = True) -> nn.Module:
    return maybe_sn(nn.Embedding(num, dim), sn)


class ConditionalBatchNorm2d(nn.Module):
    """BN(x) * (1 + gamma(c)) + beta(c), with gamma, beta from the condition c.

    ``num_classes``: c is a class id and gamma/beta are rows of per-layer embeddings.
    ``cond_dim``: c is a vector (BigGAN's shared class embedding, or CcGAN-ILI's label embedding
    h = y2h(y)) and gamma/beta are linear maps of it.
    Neither: an ordinary affine BN that ignores c (CcGAN-NLI feeds its label elsewhere).
    gamma and beta start at zero so every layer starts as a plain BN.
    """

    def __init__(self, num_features: int, *, num_classes: int = 0, cond_dim: int = 0,
                 sn: bool = False):
        super().__init__()
        if num_classes and cond_dim:
            raise ValueError("ConditionalBatchNorm2d takes num_classes or cond_dim, not both")
        self.bn = nn.BatchNorm2d(num_features, affine=not (num_classes or cond_dim))
        self.gamma: nn.Module | None = None
        self.beta: nn.Module | None = None
        if num_classes:
            self.gamma, self.beta = nn.Embedding(num_classes, num_features), \
                nn.Embedding(num_classes, num_features)
            nn.init.zeros_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)
        elif cond_dim:
            self.gamma = linear(cond_dim, num_features, sn=sn)
            self.beta = linear(cond_dim, num_features, sn=sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.bn(x)
        if self.gamma is None:
            return out
        gamma = self.gamma(cond)[:, :, None, None]
        beta = self.beta(cond)[:, :, None, None]
        return out * (1 + gamma) + beta


class SelfAttention(nn.Module):
    """SAGAN self-attention: every position attends to a 2x-pooled map of all positions.

    Output x + gain * attention(x), with the gain starting at 0 so the block begins as the
    identity and the net learns how much non-local context to mix in.
    """

    def __init__(self, channels: int, *, sn: bool = True):
        super().__init__()
        self.key_ch = max(1, channels // 8)
        self.value_ch = max(1, channels // 2)
        self.query = conv(channels, self.key_ch, 1, sn=sn, bias=False)
        self.key = conv(channels, self.key_ch, 1, sn=sn, bias=False)
        self.value = conv(channels, self.value_ch, 1, sn=sn, bias=False)
        self.out = conv(self.value_ch, channels, 1, sn=sn, bias=False)
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.query(x).flatten(2)  # (B, k, HW)
        key = nn.functional.max_pool2d(self.key(x), 2).flatten(2)  # (B, k, HW/4)
        value = nn.functional.max_pool2d(self.value(x), 2).flatten(2)  # (B, v, HW/4)
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (B, HW, HW/4)
        mixed = (value @ attention.transpose(1, 2)).view(b, self.value_ch, h, w)
        return x + self.gain * self.out(mixed)
