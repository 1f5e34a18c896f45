"""Accelerator options: checking, resolution per device, and what they do to training on CPU."""

import json
import platform

import numpy as np
import pytest
import torch
import yaml
from conftest import SCHEMA_PATH

import cgankd.accel as accel_module
from cgankd.accel import ACCEL_DEFAULTS, checked_accel_options, resolve_accel
from cgankd.config import config_problem, load_schema
from cgankd.errors import CgankdInputError
from cgankd.stages.train_cgan import train_cgan
from cgankd.kd.objective import DistillObjective
from cgankd.nets import build_net
from cgankd.train.recipe import checked_recipe
from cgankd.train.trainer import fit, predict
from toy_data import bar_images, toy_split

CPU = torch.device("cpu")
RECIPE = {"steps": 30, "batch_size": 16, "lr": 0.05, "crop_pad": 1, "flip": False,
          "eval_every": 10, "checkpoint_every": 10, "milestones": [0.5]}


def _fit(tmp_path, name, accel=None, steps=30):
    torch.manual_seed(0)
    net = build_net("cnn", 3, 1, width=4, blocks=2)
    objective = DistillObjective("none", task="classification", student=net, teacher=None,
                                 sample_input=torch.zeros(2, 1, 8, 8), n_data=96)
    result = fit(objective, net, bar_images(), bar_images(seed=1),
                 checked_recipe({**RECIPE, "steps": steps}, "r"), task="classification",
                 label_scale=None, device=CPU, seed=0, checkpoint_path=tmp_path / f"{name}.pt",
                 log_path=tmp_path / f"{name}.jsonl", fingerprint="x", progress=False,
                 accel=accel)
    return result, net


# --- options and resolution -----------------------------------------------------------------

def test_schema_defaults_mirror_the_package_defaults():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["accel"]
    assert {k: v["default"] for k, v in schema["properties"].items()} == ACCEL_DEFAULTS
    assert set(schema["properties"]["amp"]["enum"]) - {False} == set(accel_module.AMP_CHOICES)


@pytest.mark.parametrize("options, match", [
    ({"amps": "bf16"}, "unknown option accel.amps"),
    ({"amp": "bf32"}, "accel.amp must be one of auto, native_bf16, fp32, bf16, fp16, got 'bf32'"),
    ({"channels_last": "yes"}, "accel.channels_last"),
    ({"compile": "true"}, "accel.compile"),
])
def test_bad_accel_options_fail_in_one_line_naming_the_key(options, match):
    with pytest.raises(CgankdInputError, match=match) as err:
        checked_accel_options(options)
    assert "\n" not in str(err.value)


def test_schema_names_a_bad_amp_value_in_one_line():
    problem = config_problem({"accel": {"amp": "bf32"}}, load_schema(SCHEMA_PATH))
    assert problem.startswith("config key accel.amp:") and "\n" not in problem
    assert config_problem({"accel": {"amp": False, "channels_last": True}},
                          load_schema(SCHEMA_PATH)) is None


def test_yaml_off_means_fp32():
    assert checked_accel_options(yaml.safe_load("amp: off"))["amp"] == "fp32"


def test_auto_resolves_to_plain_fp32_on_cpu():
    for auto_amp in (True, False):
        acc = resolve_accel({}, CPU, auto_amp=auto_amp)
        assert acc.summary() == {"amp": "fp32", "channels_last": False, "compile": False}
        assert acc.amp_dtype is None and not acc.grad_scaler().is_enabled()


def test_auto_on_cuda_is_bf16_and_channels_last_but_fp32_for_the_gan(monkeypatch):
    # Resolution only: no CUDA tensor is made, so this runs on a machine without a GPU.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cuda = torch.device("cuda")
    assert resolve_accel({}, cuda).summary() == {"amp": "bf16", "channels_last": True,
                                                "compile": False}
    assert torch.backends.cudnn.benchmark is True
    assert resolve_accel({}, cuda, auto_amp=False).amp == "fp32"
    assert resolve_accel({"amp": "bf16"}, cuda, auto_amp=False).amp == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_accel({}, cuda).amp == "fp32"  # pre-Ampere GPUs stay in fp32
    assert resolve_accel({"amp": "fp16"}, cuda).amp_dtype == torch.float16


def test_native_bf16_follows_the_hardware_and_applies_to_the_gan(monkeypatch):
    # Resolution only: the hardware answers are patched, so this runs on any machine.
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    for auto_amp in (True, False):  # the GAN passes auto_amp=False: native_bf16 still holds
        assert resolve_accel({"amp": "native_bf16"}, CPU, auto_amp=auto_amp).amp == "bf16"
    # plain AVX-512: oneDNN would convert bf16 to fp32 and back, slower than fp32 itself
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert resolve_accel({"amp": "native_bf16"}, CPU).amp == "fp32"  # never emulated
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_accel({"amp": "native_bf16"}, CPU).amp == "bf16"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # Arm: the BF16 extension
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert resolve_accel({"amp": "native_bf16"}, CPU).amp == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_accel({"amp": "native_bf16"}, torch.device("cuda"),
                         auto_amp=False).amp == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_accel({"amp": "native_bf16"}, torch.device("cuda")).amp == "fp32"


def test_fp16_scales_the_loss_and_bf16_does_not():
    assert resolve_accel({"amp": "fp16"}, CPU).grad_scaler().is_enabled()
    assert not resolve_accel({"amp": "bf16"}, CPU).grad_scaler().is_enabled()


# --- what the options do to training on CPU -------------------------------------------------

def test_auto_on_cpu_trains_bit_identically_to_no_options(tmp_path):
    plain, _ = _fit(tmp_path, "plain")
    auto, _ = _fit(tmp_path, "auto", accel={"amp": "auto", "channels_last": "auto"})
    assert auto.accel == {"amp": "fp32", "channels_last": False, "compile": False,
                          "processes": 1}
    for key, value in plain.best_state.items():
        assert torch.equal(value, auto.best_state[key]), key
    assert (tmp_path / "plain.jsonl").read_text().count("step") == 3


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_half_precision_on_cpu_trains_and_the_loss_falls(tmp_path, amp):
    result, net = _fit(tmp_path, amp, accel={"amp": amp})
    assert result.accel["amp"] == amp
    history = [json.loads(line) for line in (tmp_path / f"{amp}.jsonl").read_text().splitlines()]
    losses = [h["train"]["total"] for h in history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert result.best_val["accuracy"] > 60  # chance is 33 %
    assert all(p.dtype == torch.float32 for p in net.parameters())  # weights stay fp32
    plain, _ = _fit(tmp_path, "plain")
    assert any(not torch.equal(value, result.best_state[key])  # autocast changed the arithmetic
               for key, value in plain.best_state.items())


def test_channels_last_on_cpu_gives_the_same_model_within_tolerance(tmp_path):
    plain, net = _fit(tmp_path, "plain", steps=10)
    nhwc, nhwc_net = _fit(tmp_path, "nhwc", accel={"channels_last": True}, steps=10)
    assert nhwc.accel["channels_last"] is True
    conv = next(m for m in nhwc_net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for key, value in plain.best_state.items():
        torch.testing.assert_close(nhwc.best_state[key], value, rtol=1e-4, atol=1e-5)
    images = bar_images(seed=2).images
    net.load_state_dict(plain.best_state)
    nhwc_net.load_state_dict(nhwc.best_state)
    acc = resolve_accel({"channels_last": True}, CPU)
    torch.testing.assert_close(predict(nhwc_net, images, 32, CPU, acc),
                               predict(net, images, 32, CPU), rtol=1e-4, atol=1e-4)


def test_compile_option_compiles_the_training_forward_only(tmp_path, monkeypatch):
    # The plumbing, without paying for a real compilation (tens of seconds on this CPU; the
    # real thing is test_compiled_training_matches_eager below).
    compiled = []

    def fake_compile(module):
        compiled.append(type(module).__name__)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    result, _ = _fit(tmp_path, "compiled", accel={"compile": True}, steps=10)
    assert compiled == ["DistillObjective"] and result.accel["compile"] is True
    assert all(not k.startswith("_orig_mod") for k in result.best_state)


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    eager, _ = _fit(tmp_path, "eager", steps=4)
    compiled, _ = _fit(tmp_path, "compiled", accel={"compile": True}, steps=4)
    for key, value in eager.best_state.items():
        torch.testing.assert_close(compiled.best_state[key], value, rtol=1e-4, atol=1e-5)


# --- the GAN loop ---------------------------------------------------------------------------

TINY_GAN = {"g_ch": 2, "d_ch": 2, "dim_z": 8, "dim_shared": 8, "batch_size": 8, "n_dis": 1,
            "ema_start": 1, "checkpoint_every": 2, "sample_every": 0}


def test_gan_runs_in_explicit_bf16_and_a_checkpoint_of_another_precision_is_not_resumed(
        tmp_path):
    summary = train_cgan(toy_split(), {**TINY_GAN, "iterations": 4}, tmp_path,
                         progress=False, accel={"amp": "bf16"})
    assert summary["accel"]["amp"] == "bf16"
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(np.isfinite(r["loss_d"]) for r in records)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["amp"] == "bf16"
    again = train_cgan(toy_split(), {**TINY_GAN, "iterations": 4}, tmp_path, progress=False)
    assert again["accel"]["amp"] == "fp32" and again["start_iteration"] == 0
