"""The forward contract every net honours, checked on a sample batch.

``net(x)`` gives the head's output, ``(N, num_outputs)``; ``net(x, return_features=True)`` gives
``(output, feats)`` with ``feats = [stem, stage maps..., embedding]``: at least two 4-D maps
(``(N, C, H, W)``) and a 2-D ``(N, D)`` embedding. Feature-based KD losses read the maps and
the embedding, the quality metrics the embedding. Zoo nets honour it by construction
(``cgankd.blocks.base.StagedNet``); a net named by import path is checked before it trains.
"""

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from cgankd.errors import CgankdInputError


@contextlib.contextmanager
def _evaluating(net: nn.Module) -> Iterator[None]:
    """Eval mode without gradients (BN running stats untouched), the net's mode restored."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        net.train(was_training)


def feature_shapes(net: nn.Module, x: torch.Tensor, role: str
                   ) -> tuple[torch.Size, list[torch.Size]]:
    """(output shape, feature shapes) of one no-grad forward in eval mode (BN running stats
    untouched, the mode restored); one line naming ``role`` if the features break the contract."""
    try:
        with _evaluating(net):
            returned = net(x, return_features=True)
    except TypeError as err:
        raise CgankdInputError(f"the {role} net's forward must take return_features=True "
                               f"({err})") from None
    if not (isinstance(returned, tuple) and len(returned) == 2):
        raise CgankdInputError(f"the {role} net's forward(x, return_features=True) must return "
                               f"(output, features), got {type(returned).__name__}")
    out, feats = returned
    feats = list(feats)
    if (len(feats) < 3 or any(f.dim() != 4 for f in feats[:-1]) or feats[-1].dim() != 2):
        raise CgankdInputError(
            f"the {role} net's features must be [stem, stage maps..., (N, D) embedding] with 4-D "
            f"maps; got shapes {[tuple(f.shape) for f in feats]}")
    return out.shape, [f.shape for f in feats]


def check_contract(net: nn.Module, x: torch.Tensor, num_outputs: int, role: str) -> None:
    """Both forwards on ``x`` (a few samples on the net's device) meet the contract."""
    n = x.shape[0]
    out_shape, feats = feature_shapes(net, x, role)
    if tuple(out_shape) != (n, num_outputs):
        raise CgankdInputError(f"the {role} net's output must be (N, {num_outputs}) for "
                               f"{num_outputs} output(s); got {tuple(out_shape)} for N={n}")
    if feats[-1][0] != n:
        raise CgankdInputError(f"the {role} net's embedding must have one row per sample; got "
                               f"{tuple(feats[-1])} for N={n}")
    with _evaluating(net):
        plain = net(x)
    if not isinstance(plain, torch.Tensor) or tuple(plain.shape) != tuple(out_shape):
        raise CgankdInputError(f"the {role} net's plain forward net(x) must return the output "
                               f"tensor alone, shaped as with return_features=True")
