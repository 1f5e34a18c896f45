"""Forward FLOPs per image of the pipeline's nets, counted, not measured.

Each net is built through the package's own registries and builders (``cgankd.nets``,
``cgankd.gan.models``, ``cgankd.dre``) on the meta device, so no weight is allocated or
initialised (spectral norm's power iterations included), and run once at batch 1 under
``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions, 2 FLOPs per
multiply-add. Norms, activations, pooling and the optimizer are not counted (a few per cent
of a convnet's FLOPs).
"""

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from cgankd.report.compute_sizes import Sizes
from cgankd.stage_options.dre import checked_dre_options
from cgankd.stage_options.gan import checked_gan_options

DEVICE = torch.device("meta")  # shapes only: FLOPs depend on shapes, not on values


def _zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.zeros(*shape, dtype=dtype, device=DEVICE)


def _image(sizes: Sizes) -> torch.Tensor:
    return _zeros(1, sizes.channels, sizes.resolution, sizes.resolution)


def forward_flops(module: torch.nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass of ``module`` on ``inputs`` (FlopCounterMode's count)."""
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def net_flops(spec: Mapping[str, Any], sizes: Sizes) -> int:
    """Forward FLOPs per image of a teacher / student / metric net section ({net, kwargs})."""
    from cgankd.nets import build_net

    with DEVICE:
        net = build_net(spec["net"], sizes.classes or 1, sizes.channels,
                        **(spec.get("kwargs") or {}))
    return forward_flops(net, _image(sizes))


def gan_flops(config: Mapping[str, Any], sizes: Sizes) -> tuple[int, int, dict[str, Any]]:
    """(G, D) forward FLOPs per image and the GAN options; the nets' arguments as
    cgankd/gan/conditioning.py build_setup makes them from the data."""
    from cgankd.gan.label_embedding import DIM_EMBED
    from cgankd.gan.models import build_discriminator, build_generator

    task = "classification" if sizes.classes else "regression"
    opts = checked_gan_options(config["gan"].get("options"), task)
    condition = "class" if sizes.classes else ("scalar" if opts["label_input"] == "nli"
                                                else "vector")
    common = {"resolution": sizes.resolution, "channels": sizes.channels,
              "condition": condition, "num_classes": sizes.classes or 0,
              "dim_cond": DIM_EMBED if condition == "vector" else 0,
              "attention_res": opts["attention_res"]}
    with DEVICE:
        G = build_generator(opts["backbone"], **common, dim_z=opts["dim_z"], ch=opts["g_ch"],
                            mults=opts["g_mults"], dim_shared=opts["dim_shared"],
                            hier=bool(opts["hier"]) and condition != "scalar",
                            native_resolution=opts["native_resolution"])
        D = build_discriminator(opts["backbone"], **common, ch=opts["d_ch"],
                                mults=opts["d_mults"])
    cond = {"class": _zeros(1, dtype=torch.long), "scalar": _zeros(1),
            "vector": _zeros(1, DIM_EMBED)}[condition]
    return (forward_flops(G, _zeros(1, opts["dim_z"]), cond),
            forward_flops(D, _image(sizes), cond), opts)


def _feat_shape(opts: Mapping[str, Any], sizes: Sizes) -> tuple[int, ...]:
    return tuple(opts["feat_shape"] or (sizes.channels, sizes.resolution, sizes.resolution))


def extractor_flops(opts: Mapping[str, Any], sizes: Sizes) -> int:
    """Forward FLOPs per image of the cDR-RS extractor checked extractor options describe
    (fit_dre's, or the quality stage's: cgankd/stages/_extractor.py builds the same net)."""
    from cgankd.dre.dre_file import build_extractor

    task = "classification" if sizes.classes else "regression"
    with DEVICE:
        extractor = build_extractor(task, sizes.channels, sizes.resolution, sizes.classes,
                                    _feat_shape(opts, sizes), int(opts["extractor_width"]))
    return forward_flops(extractor, _image(sizes))


def dre_flops(config: Mapping[str, Any], sizes: Sizes) -> tuple[int, int, dict[str, Any]]:
    """(extractor, DR MLP) forward FLOPs per image and the DRE options (cgankd/stages/fit_dre.py
    builds the same nets)."""
    from cgankd.dre.models import CLASS_DR_HIDDEN, DRMLP, REGRESSION_DR_HIDDEN

    opts = checked_dre_options(config["dre"].get("options"))
    feat = _feat_shape(opts, sizes)
    hidden = tuple(opts["dr_hidden"] or (CLASS_DR_HIDDEN if sizes.classes
                                         else REGRESSION_DR_HIDDEN))
    code = sizes.classes or 1  # one-hot class code; a regression label (NLI) is one number
    with DEVICE:
        psi = DRMLP(math.prod(feat), code, hidden)
    return (extractor_flops(opts, sizes),
            forward_flops(psi, _zeros(1, *feat), _zeros(1, code)), opts)


