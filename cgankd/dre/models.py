"""The nets of cDR-RS (METHOD.md section 3): feature extractors and the conditional DR model.

Density ratios are estimated in a feature space h(x), not pixel space: a classifier trunk
(classification) or a sparse autoencoder with a regression head (regression) maps images to
a C*H*W vector h, and an MLP psi(h | label code) >= 0 estimates p_real(h | y) / p_fake(h | y).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from cgankd.errors import CgankdInputError
from cgankd.blocks.residual import PooledResNet

# Published hidden widths of the DR MLP (METHOD.md section 3), one tuple per task kind.
CLASS_DR_HIDDEN = (2048, 1024, 512, 256, 128)
REGRESSION_DR_HIDDEN = (1024, 512, 256, 128, 64)

# ResNet-34's BasicBlock counts per stage.
RESNET34_BLOCKS = (3, 4, 6, 3)


def _flat_dim(feat_shape: tuple[int, int, int]) -> int:
    if len(feat_shape) != 3 or min(feat_shape) < 1:
        raise CgankdInputError(f"feat_shape must be three positive ints (C, H, W), "
                               f"got {feat_shape!r}")
    return math.prod(feat_shape)


class DRMLP(nn.Module):
    """psi(h | code): an MLP on [label code ; h] whose ReLU head keeps every ratio >= 0."""

    def __init__(self, in_dim: int, label_code_dim: int,
                 hidden: tuple[int, ...] = CLASS_DR_HIDDEN, groups: int = 8,
                 dropout: float = 0.5):
        super().__init__()
        bad = [w for w in hidden if w % groups]
        if bad:
            raise CgankdInputError(f"DR hidden width {bad[0]} is not divisible by groups={groups}")
        layers: list[nn.Module] = []
        width = in_dim + label_code_dim
        for out in hidden:
            layers += [nn.Linear(width, out), nn.GroupNorm(groups, out), nn.ReLU(),
                       nn.Dropout(dropout)]
            width = out
        # ReLU on the head, as published: a density ratio is non-negative by definition.
        head = nn.Linear(width, 1)
        # Start at psi = 1, the ratio of two equal densities (and the fakes' mean the penalty
        # asks for). With the default init the head can start negative for every input, and
        # a ReLU that outputs 0 everywhere gets no gradient: psi stays 0 for good.
        nn.init.zeros_(head.weight)
        nn.init.ones_(head.bias)
        layers += [head, nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        n = h.shape[0]
        # Features may arrive as (N, C, H, W) and scalar codes as (N,): flatten both to rows.
        x = torch.cat([code.reshape(n, -1).to(h.dtype), h.reshape(n, -1)], dim=1)
        return self.net(x).squeeze(1)


class ClassLabelCode(nn.Module):
    """Classification label code: a learned Embedding(K, K), trained with the DR model."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_classes)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embed(labels.long())


class ClassFeatureExtractor(nn.Module):
    """ResNet-34-style classifier whose pooled feature is lifted to the C*H*W feature h.

    forward(x) -> (logits, h). Trained with cross-entropy on real data, then frozen; h is
    what the DR model sees.
    """

    def __init__(self, in_channels: int, num_classes: int, feat_shape: tuple[int, int, int],
                 width: int = 64, blocks: tuple[int, ...] = RESNET34_BLOCKS):
        super().__init__()
        feat_dim = _flat_dim(feat_shape)
        # Stage widths width * (1, 2, 4, 8): 64-128-256-512 at the published width=64.
        self.trunk = PooledResNet(in_channels, width, blocks)
        pooled = self.trunk.embed_dim
        self.to_feature = nn.Sequential(nn.Linear(pooled, feat_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(feat_dim, pooled), nn.ReLU(),
                                  nn.Linear(pooled, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.to_feature(self.trunk(x))
        return self.head(h), h


def _down_up_channels(resolution: int, width: int) -> list[int]:
    """Channels at each 2x-down level from `resolution` to 4x4, doubling up to width * 8."""
    if resolution < 8 or resolution & (resolution - 1):
        raise CgankdInputError(f"autoencoder resolution must be a power of two >= 8, "
                               f"got {resolution}")
    levels = resolution.bit_length() - 3  # log2(resolution / 4)
    return [width * min(2 ** i, 8) for i in range(levels + 1)]


class RegressionAutoencoder(nn.Module):
    """Sparse autoencoder with a regression head: x -> h (ReLU bottleneck) -> (x_hat, y_hat).

    forward(x) -> (recon, h, y_hat) with y_hat of shape (N,). The decoder's output and the
    regression head are linear, not squashed: the decoder then fits whatever pixel range the
    data module uses ([0, 1] or [-1, 1]), and a Sigmoid head could only reach the labels 0
    and 1 (the normalised min and max, always present) with infinite logits, which stalls
    their gradients; consumers clip y_hat to [0, 1] where a label is needed.
    """

    def __init__(self, in_channels: int, resolution: int, feat_shape: tuple[int, int, int],
                 width: int = 64):
        super().__init__()
        feat_dim = _flat_dim(feat_shape)
        chans = _down_up_channels(resolution, width)
        enc: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 3, 1, 1), nn.BatchNorm2d(chans[0]),
                                nn.ReLU()]
        for c_in, c_out in zip(chans, chans[1:]):
            enc += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        enc += [nn.Flatten(), nn.Linear(chans[-1] * 16, feat_dim), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.Linear(feat_dim, chans[-1] * 16), nn.ReLU(),
                                nn.Unflatten(1, (chans[-1], 4, 4))]
        for c_in, c_out in zip(chans[::-1], chans[-2::-1]):
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        dec += [nn.Conv2d(chans[0], in_channels, 3, 1, 1)]
        self.decoder = nn.Sequential(*dec)

        self.regressor = nn.Sequential(nn.Linear(feat_dim, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.decoder(h), h, self.regressor(h).squeeze(1)


def autoencoder_loss(recon: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                     y_hat: torch.Tensor, y: torch.Tensor, sparsity: float = 1e-3,
                     reg_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE(recon, x) + sparsity * mean(h) + reg_weight * MSE(y_hat, y); returns (loss, parts).

    h is a ReLU output (>= 0), so mean(h) is its L1 norm per unit: the sparsity penalty.
    """
    recon_term = F.mse_loss(recon, x)
    sparse_term = h.mean()
    # Reshape both to rows so a (N, 1) label never broadcasts against (N,) into (N, N).
    reg_term = F.mse_loss(y_hat.reshape(-1), y.reshape(-1).to(y_hat.dtype))
    loss = recon_term + sparsity * sparse_term + reg_weight * reg_term
    values = torch.stack([loss, recon_term, sparse_term, reg_term]).detach().tolist()
    return loss, dict(zip(("loss", "recon", "sparsity", "regression"), values))
