"""The GAN stage: CcGAN vicinity (golden values), DiffAugment, backbones, losses, training with
checkpoints and resume, and generation to HDF5."""

import json
import math

import numpy as np
import pytest
import torch

from cgankd.errors import CgankdInputError
from cgankd.gan.diffaug import POLICIES, diff_augment, saturation
from cgankd.gan.generate import generate_batch, generate_to_h5, load_generator
from cgankd.gan.losses import GAN_LOSSES
from cgankd.gan.models import GANS, LabelledGenerator, build_discriminator, build_generator
from cgankd.stages.train_cgan import train_cgan
from cgankd.gan.vicinity import SOFT_CUTOFF, VicinalSampler, nu_from_kappa, rule_of_thumb
from cgankd.h5io import read_split
from toy_data import toy_split

# RC-49 training angles: 0.1, 0.3, ..., 89.9 degrees, 25 images each, normalised by 90.
RC49_LABELS = np.repeat(np.arange(450) * 0.2 + 0.1, 25) / 90.0


@pytest.fixture(autouse=True)
def one_thread():
    # Two threads on a shared 2-core machine spin-wait on each other; tiny nets gain nothing.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- CcGAN vicinity -------------------------------------------------------------------------

def test_rule_of_thumb_reproduces_rc49_published_values():
    # To the printed digits: population std over all 11,250 images, N = 11,250.
    sigma, kappa_base = rule_of_thumb(RC49_LABELS, m_kappa=2)
    assert round(sigma, 7) == 0.0473678
    assert round(kappa_base, 6) == 0.004444
    assert nu_from_kappa(kappa_base) == pytest.approx(50625, rel=1e-9)


def test_rule_of_thumb_needs_two_distinct_labels():
    with pytest.raises(CgankdInputError, match="distinct"):
        rule_of_thumb(np.full(10, 0.5), m_kappa=2)


def _check_common(labels: np.ndarray, batch, half_width: float) -> np.ndarray:
    target = batch.target.double().numpy()
    fake = batch.fake_label.double().numpy()
    real = labels[batch.real_rows.numpy()]
    tol = 1e-6  # targets and fake labels come back as float32
    assert np.all(np.abs(real - target) <= half_width + tol)
    assert np.all((fake >= 0) & (fake <= 1))
    assert np.all(np.abs(fake - target) <= half_width + tol)
    return real


def test_hard_vicinity_windows_and_unit_weights():
    sigma, kappa = rule_of_thumb(RC49_LABELS, 2)
    sampler = VicinalSampler(RC49_LABELS, sigma, kappa, "hard")
    batch = sampler.sample(2048, torch.Generator().manual_seed(0))
    _check_common(RC49_LABELS, batch, kappa)
    assert torch.equal(batch.real_weight, torch.ones(2048))
    assert torch.equal(batch.fake_weight, torch.ones(2048))
    # Targets spread like y_u + N(0, sigma^2): some fall outside [0, 1], fakes never do.
    assert batch.target.min() < 0 or batch.target.max() > 1


def test_soft_vicinity_weights_are_gaussian_in_label_distance():
    labels = np.random.default_rng(1).uniform(0, 1, 300)
    sigma, kappa = rule_of_thumb(labels, 2)
    nu = nu_from_kappa(kappa)
    sampler = VicinalSampler(labels, sigma, nu, "soft")
    batch = sampler.sample(1024, torch.Generator().manual_seed(1))
    real = _check_common(labels, batch, math.sqrt(-math.log(SOFT_CUTOFF) / nu))
    target = batch.target.double().numpy()
    np.testing.assert_allclose(batch.real_weight.numpy(), np.exp(-nu * (real - target) ** 2),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(batch.fake_weight.numpy(),
                               np.exp(-nu * (batch.fake_label.double().numpy() - target) ** 2),
                               rtol=1e-4, atol=1e-6)
    assert batch.real_weight.min() >= SOFT_CUTOFF * 0.999


def test_clip_label_clips_d_targets_and_g_labels_alike():
    sigma, kappa = rule_of_thumb(RC49_LABELS, 2)
    plain = VicinalSampler(RC49_LABELS, sigma, kappa, "hard")  # the authors' default: off
    clipped = VicinalSampler(RC49_LABELS, sigma, kappa, "hard", clip_label=True)
    g_plain = plain.sample_targets(4096, torch.Generator().manual_seed(0))
    g_clipped = clipped.sample_targets(4096, torch.Generator().manual_seed(0))
    assert g_plain.min() < 0 or g_plain.max() > 1  # y + eps leaves [0, 1] near the ends
    assert torch.equal(g_clipped, g_plain.clamp(0, 1))  # same draw, only clipped
    batch = clipped.sample(4096, torch.Generator().manual_seed(0))
    _check_common(RC49_LABELS, batch, kappa)
    assert batch.target.min() >= 0 and batch.target.max() <= 1
    assert (batch.target == 0).any() or (batch.target == 1).any()


def test_sampler_is_deterministic_for_a_generator():
    sampler = VicinalSampler(RC49_LABELS, 0.05, 0.0045, "hard")
    a = sampler.sample(64, torch.Generator().manual_seed(3))
    b = sampler.sample(64, torch.Generator().manual_seed(3))
    assert torch.equal(a.real_rows, b.real_rows) and torch.equal(a.fake_label, b.fake_label)


def test_empty_vicinity_fails_after_bounded_retries():
    sampler = VicinalSampler(np.array([0.0, 1.0]), sigma=0.5, width=1e-6, kind="hard",
                             max_retries=5)
    with pytest.raises(CgankdInputError, match="5 redraws"):
        sampler.sample(256, torch.Generator().manual_seed(0))


# --- DiffAugment ----------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("channels", [1, 3])
def test_diffaug_keeps_shape_and_passes_gradients(policy, channels):
    x = (torch.rand(6, channels, 16, 16) * 2 - 1).requires_grad_()
    y = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x.detach(), policy, torch.Generator().manual_seed(0))
    assert torch.equal(again, y.detach())  # one generator seed, one augmentation


def test_diffaug_empty_policy_is_identity_and_unknown_fails():
    x = torch.rand(2, 3, 8, 8)
    assert diff_augment(x, "") is x
    with pytest.raises(CgankdInputError, match="'flip'"):
        diff_augment(x, "color,flip")


def test_saturation_is_noop_on_gray_and_translation_moves_content():
    gray, rgb = torch.rand(4, 1, 16, 16), torch.rand(4, 3, 16, 16)
    assert saturation(gray, torch.Generator().manual_seed(0)) is gray
    assert not torch.equal(saturation(rgb, torch.Generator().manual_seed(0)), rgb)
    moved = POLICIES["translation"](torch.ones(64, 1, 16, 16), torch.Generator().manual_seed(0))
    assert (moved == 0).any() and set(moved.unique().tolist()) <= {0.0, 1.0}
    cut = POLICIES["cutout"](torch.ones(8, 1, 16, 16), torch.Generator().manual_seed(0))
    assert ((cut == 0).flatten(1).sum(1) > 0).all()  # every image loses some square


# --- backbones ------------------------------------------------------------------------------

CONDITIONS = {"class": {"num_classes": 5}, "scalar": {}, "vector": {"dim_cond": 128}}


def _cond(condition: str, n: int) -> torch.Tensor:
    if condition == "class":
        return torch.randint(5, (n,))
    return torch.rand(n) if condition == "scalar" else torch.rand(n, 128)


@pytest.mark.parametrize("backbone", GANS.names())
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_generator_and_discriminator_shapes(backbone, condition):
    for resolution in (16, 32, 64):
        for channels in (1, 3):
            common = {"resolution": resolution, "channels": channels, "condition": condition,
                      **CONDITIONS[condition]}
            G = build_generator(backbone, dim_z=8, ch=1, dim_shared=8, **common)
            D = build_discriminator(backbone, ch=2, **common)
            cond = _cond(condition, 2)
            x = G(torch.randn(2, 8), cond)
            assert x.shape == (2, channels, resolution, resolution)
            assert x.abs().max() <= 1
            assert D(x, cond).shape == (2,)


def test_sagan_has_attention_and_biggan_shares_its_class_embedding():
    kw = {"resolution": 32, "channels": 3, "condition": "class", "num_classes": 4}
    sagan = build_generator("sagan", dim_z=8, ch=2, **kw)
    assert len(sagan.attention) == 1 and len(build_discriminator("sagan", ch=2, **kw).attention)
    assert build_generator("biggan", dim_z=8, ch=2, dim_shared=16, **kw).shared is not None


@pytest.mark.parametrize("condition", ["class", "vector"])
def test_hierarchical_z_reaches_every_block(condition):
    G = build_generator("biggan", resolution=32, channels=3, dim_z=20, ch=2, dim_shared=8,
                        hier=True, condition=condition, **CONDITIONS[condition])
    assert G.z_chunks == [5, 5, 5, 5]
    assert G(torch.randn(2, 20), _cond(condition, 2)).shape == (2, 3, 32, 32)
    with pytest.raises(CgankdInputError, match="hier"):
        build_generator("biggan", resolution=32, channels=3, dim_z=20, ch=2, hier=True,
                        condition="scalar")


def test_bad_resolution_and_mults_fail_clearly():
    with pytest.raises(CgankdInputError, match="power of two"):
        build_generator("biggan", resolution=24, channels=1, dim_z=8, ch=2, num_classes=3)
    with pytest.raises(CgankdInputError, match="g_mults"):
        build_generator("biggan", resolution=32, channels=1, dim_z=8, ch=2, num_classes=3,
                        mults=[2, 2])


def test_native_resolution_draws_small_and_resizes_like_the_data():
    from cgankd.data.resize import resize_images
    from cgankd.gan.models import upsample_like_data

    torch.manual_seed(0)
    G = build_generator("biggan", resolution=16, channels=1, dim_z=8, ch=2, num_classes=3,
                        native_resolution=8).eval()
    assert len(G.blocks) == 1  # one upsampling block: 4x4 -> 8x8
    out = G(torch.randn(4, 8), torch.arange(4) % 3)
    assert out.shape == (4, 1, 16, 16) and out.abs().max() <= 1
    # The generator's resize is the data's: uint8 8x8 images resized by the data loader equal
    # the float resize of the same images (up to the uint8 rounding of each side).
    small = np.random.default_rng(0).integers(0, 256, (5, 1, 8, 8), dtype=np.uint8)
    by_loader = resize_images(small, 16).astype(np.float32)
    by_generator = upsample_like_data(torch.from_numpy(small).float(), 16).numpy()
    assert np.abs(by_loader - by_generator).max() <= 0.5 + 1e-4
    with pytest.raises(CgankdInputError, match="native_resolution"):
        build_generator("biggan", resolution=16, channels=1, dim_z=8, ch=2, num_classes=3,
                        native_resolution=32)


def test_a_native_resolution_generator_runs_under_cpu_bf16_autocast():
    """accel.amp bf16 on CPU: the antialiased resize has no bfloat16 kernel there, so the
    generator resizes in float32 and hands its dtype back."""
    torch.manual_seed(0)
    G = build_generator("biggan", resolution=16, channels=1, dim_z=8, ch=2, num_classes=3,
                        native_resolution=8).eval()
    z, y = torch.randn(4, 8), torch.arange(4) % 3
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(z, y)
    assert out.shape == (4, 1, 16, 16) and torch.isfinite(out.float()).all()
    with torch.no_grad():
        assert (out.float() - G(z, y)).abs().max() < 0.1  # bf16 rounding, not another image


def test_mode_seeking_ratio_and_option(tmp_path):
    from cgankd.gan.trainer import mode_seeking_ratio

    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
    images = torch.tensor([[0.0], [3.0], [1.0], [1.0]])
    # pairs (0, 1) and (2, 3): image gaps 3 and 0 (mean 1.5), latent gaps 1, 1, 0, 2 (mean 1)
    assert mode_seeking_ratio(images, z).item() == pytest.approx(1.5)
    summary = train_cgan(toy_split(), {**TINY, "iterations": 3, "mode_seeking": 1.0},
                         tmp_path, seed=0, progress=False)
    record = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert summary["iterations"] == 3 and record["ms_ratio"] > 0
    with pytest.raises(CgankdInputError, match="mode_seeking"):
        train_cgan(toy_split(), {**TINY, "mode_seeking": -1}, tmp_path / "bad", seed=0,
                   progress=False)


# --- losses ---------------------------------------------------------------------------------

def test_losses_on_fixed_logits():
    d_real, d_fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    w = torch.tensor([1.0, 0.5])
    hinge, vanilla = GAN_LOSSES.get("hinge"), GAN_LOSSES.get("vanilla")
    # hinge: relu(1 - d_r) = [0, 1], relu(1 + d_f) = [0, 1.5]
    assert hinge.discriminator(d_real, d_fake).item() == pytest.approx(0.5 + 0.75)
    assert hinge.discriminator(d_real, d_fake, w, w).item() == pytest.approx(0.25 + 0.375)
    assert hinge.generator(d_fake).item() == pytest.approx(0.75)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert vanilla.discriminator(d_real, d_fake).item() == pytest.approx(
        (sp(-2) + sp(0)) / 2 + (sp(-2) + sp(0.5)) / 2, rel=1e-6)
    assert vanilla.generator(d_fake, w).item() == pytest.approx((sp(2) + 0.5 * sp(-0.5)) / 2,
                                                                rel=1e-6)


# --- training, checkpoints, resume, generation ----------------------------------------------

TINY = {"g_ch": 2, "d_ch": 2, "dim_z": 8, "dim_shared": 8, "batch_size": 8, "n_dis": 2,
        "ema_start": 3, "checkpoint_every": 4, "sample_every": 5}


def _iterations(log_path) -> list[int]:
    return [json.loads(line)["iteration"] for line in log_path.read_text().splitlines()]


def test_tiny_training_writes_every_output(tmp_path):
    summary = train_cgan(toy_split(), {**TINY, "iterations": 10}, tmp_path, seed=0,
                         progress=False)
    assert summary["iterations"] == 10 and summary["start_iteration"] == 0
    assert _iterations(tmp_path / "log.jsonl") == list(range(1, 11))
    record = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss_d", "loss_g", "d_real", "d_fake", "seconds"} <= set(record)
    for name in ("samples.png", "samples/iter_000005.png", "samples/iter_000010.png"):
        assert (tmp_path / name).stat().st_size > 0
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["iteration"] == 8 + 2 and set(checkpoint) >= {"G", "G_ema", "D", "opt_G",
                                                                    "opt_D", "rng", "options"}
    blob = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert blob["backbone"] == "biggan" and blob["task"] == "classification"
    assert blob["num_classes"] == 3 and blob["config_hash"] == summary["config_hash"]


@pytest.mark.parametrize("task, extra", [
    ("classification", {}),
    ("regression", {"label_input": "ili", "vicinity": "soft", "ili_width": 0.125,
                    "ili_blocks": [1, 1, 1, 1], "ili_regressor_epochs": 1, "ili_y2h_epochs": 1}),
])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, task, extra):
    split = toy_split() if task == "classification" else toy_split(task="regression", channels=3)
    options = {**TINY, "iterations": 10, **extra}
    train_cgan(split, options, tmp_path / "whole", seed=5, progress=False)

    def kill_at_7(it, record):
        if it == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_cgan(split, options, tmp_path / "cut", seed=5, progress=False,
                   on_iteration=kill_at_7)
    summary = train_cgan(split, options, tmp_path / "cut", seed=5, progress=False)
    assert summary["start_iteration"] == 4  # the last checkpoint before the kill
    assert _iterations(tmp_path / "cut" / "log.jsonl") == list(range(1, 11))
    whole = torch.load(tmp_path / "whole" / "generator.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "generator.pt", weights_only=True)
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, cut["state_dict"][key]), key
    if task == "regression":
        assert cut["y2h_state_dict"] is not None and cut["label_max"] == 90.0


def test_a_longer_run_resumes_a_finished_shorter_one_to_the_same_generator(tmp_path):
    """Studies and reruns lengthen a finished GAN from its last checkpoint (digits_angle's
    12,000-iteration CcGAN continued the 6,000-iteration default's): that must equal training
    the longer run from scratch, so iterations are not part of the resume key."""
    split = toy_split(task="regression", channels=3)
    train_cgan(split, {**TINY, "iterations": 10}, tmp_path / "whole", seed=5, progress=False)
    train_cgan(split, {**TINY, "iterations": 6}, tmp_path / "grown", seed=5, progress=False)
    summary = train_cgan(split, {**TINY, "iterations": 10}, tmp_path / "grown", seed=5,
                         progress=False)
    assert summary["start_iteration"] == 6
    assert _iterations(tmp_path / "grown" / "log.jsonl") == list(range(1, 11))
    whole = torch.load(tmp_path / "whole" / "generator.pt", weights_only=True)
    grown = torch.load(tmp_path / "grown" / "generator.pt", weights_only=True)
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, grown["state_dict"][key]), key


def test_changed_options_start_from_scratch(tmp_path):
    train_cgan(toy_split(), {**TINY, "iterations": 4}, tmp_path, progress=False)
    summary = train_cgan(toy_split(), {**TINY, "iterations": 4, "lr_d": 1e-4}, tmp_path,
                         progress=False)
    assert summary["start_iteration"] == 0
    assert _iterations(tmp_path / "log.jsonl") == [1, 2, 3, 4]


def test_unknown_option_and_empty_class_fail_clearly(tmp_path):
    with pytest.raises(CgankdInputError, match=r"gan\.options\.n_critic"):
        train_cgan(toy_split(), {"n_critic": 2}, tmp_path, progress=False)
    split = toy_split()
    split.attrs["num_classes"] = 4
    with pytest.raises(CgankdInputError, match="class 3"):
        train_cgan(split, TINY, tmp_path, progress=False)


@pytest.fixture(scope="module")
def regression_generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("ccgan")
    train_cgan(toy_split(task="regression", channels=3),
               {**TINY, "iterations": 3, "backbone": "sagan"}, out, progress=False)
    return out / "generator.pt"


def test_generate_to_h5_streams_requested_labels_deterministically(tmp_path,
                                                                   regression_generator):
    labels = np.linspace(5.0, 85.0, 23)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert generate_to_h5(regression_generator, labels, tmp_path / f"{name}.h5",
                              batch_size=10, seed=seed, device="cpu", progress=False) == 23
    a, b, c = (read_split(tmp_path / f"{n}.h5") for n in "abc")
    assert a.images.shape == (23, 3, 8, 8) and a.images.dtype == np.uint8
    np.testing.assert_allclose(a.labels, labels.astype(np.float32))
    np.testing.assert_array_equal(a.index, np.arange(23))
    assert a.attrs["task"] == "regression" and a.attrs["label_max"] == 90.0
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_load_generator_and_generate_batch(regression_generator):
    G, meta = load_generator(regression_generator, "cpu")
    assert isinstance(G, LabelledGenerator) and meta["task"] == "regression"
    x = generate_batch(G, meta, torch.tensor([0.0, 45.0, 90.0]), torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1


def test_generate_rejects_out_of_range_classes(tmp_path):
    train_cgan(toy_split(), {**TINY, "iterations": 1}, tmp_path, progress=False)
    with pytest.raises(CgankdInputError, match=r"\[0, 3\)"):
        generate_to_h5(tmp_path / "generator.pt", np.array([0, 3]), tmp_path / "x.h5",
                       device="cpu", progress=False)
