"""The generator file format (``generator.pt``): what the GAN stage writes for sampling.

The file holds the standing EMA generator's weights, the arguments that rebuild it, the label
meta (num_classes, or label_min/label_max and the vicinity parameters), the ILI label embedding
when there is one, and the training options; plain values only, so it loads with
``weights_only=True``. ``cgankd.gan.generate.load_generator`` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from cgankd.formats import GENERATOR as GENERATOR_KIND
from cgankd.train.resume import save_checkpoint

if TYPE_CHECKING:  # the reader (generate.py) imports this module, not the training code
    from cgankd.gan.trainer import Trainer

GENERATOR = "generator.pt"


def generator_payload(final: nn.Module, trainer: Trainer, *, options_hash: str, seed: int,
                      iterations: int) -> dict[str, Any]:
    """What ``generator.pt`` holds: all ``generate.load_generator`` needs, plain values only."""
    setup, opts = trainer.setup, trainer.opts
    return {"format": GENERATOR_KIND.tag, "backbone": opts["backbone"],
            "generator_kwargs": setup.gen_kwargs, "state_dict": final.state_dict(),
            "task": setup.task, **setup.label_meta,
            "label_input": opts["label_input"] if setup.task == "regression" else None,
            "y2h_state_dict": None if trainer.y2h is None else trainer.y2h.state_dict(),
            "options": opts, "config_hash": options_hash, "seed": seed,
            "iterations": iterations}


def write_generator(path: Path, final: nn.Module, trainer: Trainer, *, options_hash: str,
                    seed: int, iterations: int) -> None:
    """Write ``generator.pt`` atomically: a kill mid-save keeps the previous file."""
    save_checkpoint(path, generator_payload(final, trainer, options_hash=options_hash,
                                            seed=seed, iterations=iterations))
