"""Accelerator options in one place: mixed precision, memory layout, compilation, cuDNN autotune.

One ``accel:`` config section serves every training loop. Each option has an ``auto`` (or
off) default that speeds up CUDA and leaves CPU exactly as plain fp32 PyTorch, so the same
config runs on a laptop and on a GPU node, and CPU results do not move when the section is
absent. ``resolve_accel`` turns the options into an ``Accel`` for one device; the loops only
call its methods and never look at the options themselves.
"""

import contextlib
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cgankd.errors import CgankdInputError
from cgankd.options import merge_options

ACCEL_DEFAULTS: dict[str, Any] = {
    # Autocast dtype of forward passes: auto | native_bf16 | fp32 | bf16 | fp16. auto = bf16 on
    # a CUDA device that supports it, fp32 elsewhere (CPU, old GPUs) and in the GAN loop (see
    # resolve_accel); native_bf16 = bf16 wherever the device computes it natively (such GPUs,
    # CPUs with AVX512-BF16 or AMX), the GAN included, fp32 elsewhere: a config that asks for
    # bf16's speed stays fp32, not emulated and slow, on a machine without it; fp32 = no
    # autocast; fp16 adds a gradient scaler against underflow.
    "amp": "auto",
    # Channels-last (NHWC) weights and images: auto | true | false. auto = on for CUDA, where
    # tensor-core convolutions want it, off on CPU, where it buys little and reorders sums.
    "channels_last": "auto",
    # torch.compile the training forward passes. Off: it pays only for long runs of nets whose
    # graphs it can fuse, and costs minutes of compilation (and a C++ compiler) per process.
    "compile": False,
    # cuDNN autotuning of convolution algorithms (CUDA only; batch shapes here are fixed, the
    # case it helps).
    "cudnn_benchmark": True,
}
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NATIVE_BF16 = "native_bf16"
AMP_CHOICES = ("auto", NATIVE_BF16, *AMP_DTYPES)


def checked_accel_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """ACCEL_DEFAULTS updated by ``options``; an unknown key or a bad value raises, naming it."""
    opts = merge_options(ACCEL_DEFAULTS, options, "accel")
    if opts["amp"] is False:  # YAML 1.1 reads `amp: off` (or no) as false: the user meant fp32
        opts["amp"] = "fp32"
    if opts["amp"] not in AMP_CHOICES:
        raise CgankdInputError(f"accel.amp must be one of {', '.join(AMP_CHOICES)}, "
                               f"got {opts['amp']!r}")
    if opts["channels_last"] not in ("auto", True, False):
        raise CgankdInputError(f"accel.channels_last must be auto, true or false, got "
                               f"{opts['channels_last']!r}")
    for key in ("compile", "cudnn_benchmark"):
        if not isinstance(opts[key], bool):
            raise CgankdInputError(f"accel.{key} must be true or false, got {opts[key]!r}")
    return opts


@dataclass(frozen=True)
class Accel:
    """What the options mean on one device; the training loops call only these methods."""

    device: torch.device
    amp_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool
    compile: bool

    @property
    def amp(self) -> str:
        """The resolved precision's name (fp32, bf16, fp16): logged, and part of resume keys."""
        return next(name for name, dtype in AMP_DTYPES.items() if dtype == self.amp_dtype)

    def summary(self) -> dict[str, Any]:
        return {"amp": self.amp, "channels_last": self.channels_last, "compile": self.compile}

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the resolved dtype around forward passes; a no-op for fp32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler for one optimizer: active for fp16 only (bf16 has fp32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move ``model``'s weights to the memory layout in use (in place; returns it)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the memory layout in use (other tensors unchanged)."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def compiled(self, forward: nn.Module) -> nn.Module:
        """``forward`` compiled when asked, else itself.

        Callers keep the uncompiled module for state dicts (a compiled wrapper prefixes every
        key with ``_orig_mod.``) and call the compiled one only for training steps.
        """
        return torch.compile(forward) if self.compile else forward


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler) -> None:
    """Backward pass and optimizer step; with a disabled scaler exactly backward() + step()."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix work in hardware: a GPU that supports it, or a CPU
    with bf16 instructions (x86: AVX512-BF16 or AMX; Arm: the BF16 extension). oneDNN also
    runs bf16 on plain AVX-512 x86 CPUs, by converting to fp32: slower than fp32 itself."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # Arm: true with the extension


def resolve_accel(options: Mapping[str, Any] | None, device: torch.device, *,
                  auto_amp: bool = True) -> Accel:
    """The ``Accel`` for ``device``; ``auto_amp=False`` makes ``amp: auto`` mean fp32.

    The GAN loop passes ``auto_amp=False``: spectral norm's power iteration and hinge losses
    near the margin lose too much in half precision (a sigma that drifts lets D's Lipschitz
    bound go), so the GAN runs in fp32 unless ``amp`` is set explicitly. Resolving for a CUDA
    device also sets cuDNN autotuning, process-wide, as ``cudnn_benchmark`` says.
    """
    opts = checked_accel_options(options)
    cuda = device.type == "cuda"
    amp = opts["amp"]
    if amp == "auto":
        amp = "bf16" if auto_amp and cuda and torch.cuda.is_bf16_supported() else "fp32"
    elif amp == NATIVE_BF16:
        amp = "bf16" if native_bf16(device) else "fp32"
    channels_last = cuda if opts["channels_last"] == "auto" else bool(opts["channels_last"])
    if cuda:
        torch.backends.cudnn.benchmark = opts["cudnn_benchmark"]
    return Accel(device=device, amp_dtype=AMP_DTYPES[amp], channels_last=channels_last,
                 compile=opts["compile"])

