"""The experiment files state the settings the cGAN-KD authors' scripts ran (issue 13, "Configs
as published"). Each test reads one file through ``load_config_file`` (its ``base:`` chain
merged), fills the schema's defaults and runs ``check_config`` as the workflow does when it
plans, then asserts the published values as the stage option modules resolve them.

Scripts: github.com/UBCDingXin/cGAN-KD, v3 files at commit 8fcb117, the RC-49 v1 files at
75408cd. That every experiment file resolves and passes ``check_config`` is
tests/test_plan_checks.py::test_option_modules_import_no_torch_and_pass_every_repo_config
(its glob of config/experiments/*.yaml includes cifar100_v3_kd.yaml).
"""

import pytest
from conftest import REPO

from cgankd.config import load_schema
from cgankd.config_files import deep_merge, load_config_file
from cgankd.stage_options import check_config
from cgankd.stage_options.fake import checked_filter_options, checked_subsample_options
from cgankd.stage_options.gan import checked_gan_options
from cgankd.stage_options.ladder import options_for_method, rung_filter_options
from cgankd.stage_options.plan import with_schema_defaults
from cgankd.stage_options.recipe import checked_recipe

EXPERIMENTS = REPO / "config" / "experiments"


@pytest.fixture(scope="module")
def schema():
    return load_schema(REPO / "config" / "schema.yaml")


@pytest.fixture(scope="module")
def resolved(schema):
    """name -> the experiment's config as the workflow checks it (base merged, defaults
    filled, check_config passed)."""
    cache = {}

    def get(name: str) -> dict:
        if name not in cache:
            cfg = with_schema_defaults(load_config_file(EXPERIMENTS / f"{name}.yaml"), schema)
            check_config(cfg)
            cache[name] = cfg
        return cache[name]
    return get


def _epoch_milestones(recipe: dict) -> list[float]:
    return [round(m * recipe["epochs"], 2) for m in recipe["milestones"]]


def _published_ccgan(cfg: dict) -> dict:
    return checked_gan_options(cfg["gan"]["options"], "regression")


# SteeringAngle/scripts/run_cnn.sh:8-14 (baseline) and scripts/run_cnn_fake.sh:10-19 (fine-tune):
# --epochs 350 --lr_base 0.01 --lr_decay_epochs "150_250" --batch_size_train 128 wd 5e-4.
def test_steering_angle_students_350_epochs_decay_at_150_250(resolved):
    cfg = resolved("steering_angle_v3")
    recipe = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    assert recipe["budget"] == "epochs" and recipe["epochs"] == 350
    assert _epoch_milestones(recipe) == [150, 250]
    assert (recipe["lr"], recipe["lr_decay"], recipe["batch_size"], recipe["weight_decay"]) == (
        0.01, 0.1, 128, 5e-4)
    assert cfg["fake"]["init"] == "finetune"  # run_cnn_fake.sh:18 --finetune


def test_steering_angle_student_schedule_drops_at_epochs_150_and_250(resolved):
    """The effect: over each variant's own set (NOKD, and real + 50k fakes) the lr falls x0.1
    in the step of epoch 150 and again of epoch 250, not before."""
    from cgankd.train.recipe import lr_lambda, resolved_steps

    cfg = resolved("steering_angle_v3")
    recipe = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    for n_train in (8835, 8835 + cfg["fake"]["count"]):
        steps = resolved_steps(recipe, n_train)
        per_epoch = n_train / recipe["batch_size"]
        assert steps == -(-350 * n_train // 128)
        factor = lr_lambda(recipe, steps)
        for epoch, before, after in ((150, 1.0, 0.1), (250, 0.1, 0.01)):
            step = int(epoch * per_epoch)
            assert factor(step - 2) == pytest.approx(before)
            assert factor(step + 2) == pytest.approx(after)


# SteeringAngle/scripts/run_gene_data.sh:9-12 (every call): --gan_arch SAGAN --gan_niters 20000
# --gan_batch_size_disc/gene 512 --gan_d_niters 2 --gan_threshold_type soft --gan_kappa -5
# --gan_DiffAugment; SteeringAngle/opts.py:87 hinge, :92-94 lr 1e-4 and dim_z 256, :110 policy.
def test_steering_angle_ccgan_sagan_hinge_diffaugment_20k_batch_512_two_d_steps(resolved):
    gan = _published_ccgan(resolved("steering_angle_v3"))
    assert (gan["backbone"], gan["loss"], gan["iterations"], gan["batch_size"], gan["n_dis"]) == (
        "sagan", "hinge", 20000, 512, 2)
    assert gan["diffaug"] == "color,translation,cutout"
    assert (gan["lr_g"], gan["lr_d"], list(gan["betas"]), gan["dim_z"]) == (
        1e-4, 1e-4, [0.5, 0.999], 256)
    assert (gan["vicinity"], gan["m_kappa"], gan["label_input"]) == ("soft", 5.0, "ili")


# UTKFace/scripts/run_gene_data.sh:12-15: SAGAN, 20000 iterations, batch 512, --gan_d_niters 4,
# soft, --gan_kappa -2, --gan_DiffAugment; UTKFace/opts.py:93 hinge, :98-100 lr and dim_z.
def test_utkface_ccgan_sagan_hinge_diffaugment_20k_batch_512_four_d_steps(resolved):
    gan = _published_ccgan(resolved("utkface_v3"))
    assert (gan["backbone"], gan["loss"], gan["iterations"], gan["batch_size"], gan["n_dis"]) == (
        "sagan", "hinge", 20000, 512, 4)
    assert gan["diffaug"] == "color,translation,cutout"
    assert (gan["lr_g"], gan["lr_d"], list(gan["betas"]), gan["dim_z"]) == (
        1e-4, 1e-4, [0.5, 0.999], 256)
    assert (gan["vicinity"], gan["m_kappa"], gan["label_input"]) == ("soft", 2.0, "ili")


# UTKFace/scripts/run_gene_data.sh:7 FILTER_NET="vgg11" (also run_cnn_fake.sh:7), trained as
# scripts/run_cnn.sh:81-87 (350 epochs, lr 0.01, 150_250); burn-in 100, run_gene_data.sh:16.
def test_utkface_filter_net_vgg11(resolved):
    cfg = resolved("utkface_v3")
    assert cfg["teacher"]["net"] == "vgg11"
    recipe = checked_recipe(cfg["teacher"]["recipe"], "teacher.recipe")
    assert (recipe["lr"], recipe["batch_size"]) == (0.01, 128)
    assert [round(m * 350) for m in recipe["milestones"]] == [150, 250]
    subsample = checked_subsample_options(cfg["subsample"]["options"])
    assert (subsample["n_burnin"], subsample["batch_size"], subsample["per_label"]) == (
        100, 500, 2000)


# SteeringAngle/scripts/run_gene_data.sh passes no --dre_kappa; opts.py:139 defaults it to 0,
# and with kappa 0 neither train_cdre.py:143 nor the sampler applies a label window.
def test_steering_angle_without_label_window(resolved):
    cfg = resolved("steering_angle_v3")
    options = options_for_method(cfg["subsample"]["options"], "cdrrs")  # the rule's params
    assert checked_subsample_options(options)["label_window"] is False
    # the other v3 regression file keeps it (its fine-tune's fakes used dre kappa -6)
    assert checked_subsample_options(resolved("utkface_v3")["subsample"]["options"])[
        "label_window"] is True


# RC49/CcGAN-based_KD/scripts/run_nokd_r{5,15,25}.sh:10-12 and run_nokd+fake_r*.sh:9-11
# (commit 75408cd): CNN_EPOCHS=350, LR_BASE=0.01, LR_DECAY_EPOCHS="150_250", wd 1e-4 (:28);
# the VGG16 filter net is that script's baseline too (run_nokd_r5.sh:89-99).
@pytest.mark.parametrize("setting", ["r5", "r15", "r25"])
def test_rc49_v1_student_lr(resolved, setting):
    cfg = resolved(f"rc49_v1_{setting}")
    students = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    assert (students["lr"], students["weight_decay"], students["batch_size"]) == (0.01, 1e-4, 128)
    assert [round(m * 350) for m in students["milestones"]] == [150, 250]
    teacher = checked_recipe(cfg["teacher"]["recipe"], "teacher.recipe")
    assert (cfg["teacher"]["net"], teacher["lr"], teacher["weight_decay"]) == (
        "vgg16", 0.01, 1e-4)


# CIFAR-100/RepDistiller/scripts/vanilla/run_vanilla_fake.sh:6-9 (cGAN-KD alone: the file
# "filter_densenet121_perc_0.90_adjust_True", 100k fakes) and
# scripts/distill/run_distill_fake.sh:5-6 (with a KD method: "perc_0.80_adjust_False").
def test_cifar100_v3_cgankd_only_relabelled_at_rho_09_kd_rows_filtered_at_rho_08(resolved):
    alone, with_kd = resolved("cifar100_v3"), resolved("cifar100_v3_kd")
    for cfg, rho, rung, relabel in ((alone, 0.9, "relabelled", True),
                                    (with_kd, 0.8, "filtered", False)):
        assert cfg["fake"]["final"] == rung and cfg["fake"]["count"] == 100000
        opts = checked_filter_options(rung_filter_options(rung, cfg["filter"]["options"]))
        assert (opts["mode"], opts["rho"], opts["relabel"]) == ("per_class", rho, relabel)
        assert cfg["teacher"]["net"] == "densenet121"  # PRECNN_NET, make_fake_datasets run.sh:24
    assert alone["students"]["methods"] == ["none"] and alone["fake"]["kd_methods"] == []
    methods = ["kd", "fitnet", "at", "sp", "vid", "rkd", "pkt", "crd"]
    assert with_kd["students"]["methods"] == ["none", *methods]
    assert with_kd["fake"]["kd_methods"] == methods
    assert with_kd["kd"]["convention"] == "cgankd"  # -a 1 for every non-KD method


def test_cifar100_v3_kd_differs_from_the_cgankd_only_file_only_where_the_scripts_do():
    """The KD rows share data, teacher, nets, recipes, GAN, DRE and sampling with the
    cGAN-KD-only rows: the overlay changes the methods, the KD settings and teacher
    (run_distill_fake.sh:8, wrn_40_2) and the fakes' rung."""
    alone = load_config_file(EXPERIMENTS / "cifar100_v3.yaml")
    with_kd = load_config_file(EXPERIMENTS / "cifar100_v3_kd.yaml")
    changed = {"experiment": "cifar100_v3_kd",
               "students": {"methods": with_kd["students"]["methods"]},
               "kd": with_kd["kd"], "kd_teacher": with_kd["kd_teacher"],
               "filter": {"options": {"rho": 0.8}},
               "fake": {"final": "filtered", "kd_methods": with_kd["fake"]["kd_methods"]}}
    assert with_kd == deep_merge(alone, changed)
    assert with_kd["kd_teacher"]["net"] == "wrn_40_2" and alone.get("kd_teacher") is None


# CcGAN-ILI pretraining (issue 13, "y2h trained as the authors do"): SGD lr 0.01 momentum 0.9
# wd 1e-4 for the regressor and y2h (train_net_for_label_embed.py:32, 143 in cGAN-KD's
# RC49/CcGAN-based_KD at 75408cd; UTKFace/ :59, 231 and SteeringAngle/ :47, 218 at 8fcb117),
# x0.1 at epochs 60/120 of 200 and 150/250/350 of 500 (opts.py), y2h over the distinct
# training labels; y2h batch 256 in v1 (run_gen_r5.sh:34, UTKFace run_gen.sh:34), 128 in v3
# (UTKFace/opts.py:86, SteeringAngle/opts.py:80: the run scripts pass no --gan_embed_*).
@pytest.mark.parametrize("name, y2h_batch", [
    ("rc49_v1_r5", 256), ("rc49_v1_r15", 256), ("rc49_v1_r25", 256), ("utkface_v1", 256),
    ("utkface_v3", 128), ("steering_angle_v3", 128)])
def test_ili_pretraining_as_the_authors_run_it(resolved, name, y2h_batch):
    gan = _published_ccgan(resolved(name))
    assert gan["label_input"] == "ili"
    assert (gan["ili_optimizer"], gan["ili_lr"], gan["ili_momentum"], gan["ili_weight_decay"],
            gan["ili_lr_decay"], gan["ili_y2h_labels"]) == ("sgd", 0.01, 0.9, 1e-4, 0.1,
                                                            "distinct")
    assert [round(m * gan["ili_regressor_epochs"]) for m in gan["ili_regressor_milestones"]] == [
        60, 120]
    assert [round(m * gan["ili_y2h_epochs"]) for m in gan["ili_y2h_milestones"]] == [
        150, 250, 350]
    assert (gan["ili_regressor_epochs"], gan["ili_y2h_epochs"], gan["ili_batch_size"],
            gan["ili_y2h_batch_size"], gan["ili_width"], gan["ili_label_noise"]) == (
        200, 500, 256, y2h_batch, 1.0, 0.2)


# RC49/CcGAN-based_KD/scripts/run_gen_r{5,15,25}.sh (75408cd): hinge (:35), 30,000 iterations
# (:7), batch 256 D and G (:8-9), lr 1e-4 (:12-13), dim_z 256 (--gan_dim_g 256, :36), widths 64
# (:37), soft vicinity, rule-of-thumb sigma and kappa with m 2 (:10-11, 17), ILI (:32-34);
# train_ccgan.py: DiffAugment color,translation,cutout (:11, 172), betas (0.5, 0.999) (:45-46),
# one D step per G step, no EMA; clip_label=False (generate_synthetic_data.py:291).
@pytest.mark.parametrize("setting", ["r5", "r15", "r25"])
def test_rc49_v1_ccgan_as_run_gen(resolved, setting):
    gan = _published_ccgan(resolved(f"rc49_v1_{setting}"))
    assert (gan["backbone"], gan["loss"], gan["iterations"], gan["batch_size"], gan["n_dis"]) == (
        "sngan", "hinge", 30000, 256, 1)
    assert (gan["lr_g"], gan["lr_d"], list(gan["betas"]), gan["dim_z"], gan["g_ch"],
            gan["d_ch"]) == (1e-4, 1e-4, [0.5, 0.999], 256, 64, 64)
    assert gan["diffaug"] == "color,translation,cutout" and gan["ema_decay"] == 0.0
    assert (gan["label_input"], gan["vicinity"], gan["m_kappa"], gan["sigma"], gan["kappa"],
            gan["clip_label"]) == ("ili", "soft", 2.0, None, None, False)


# run_gen_r{5,15,25}.sh:57-63: sparse AE 200 epochs, lr 0.01 x0.1 every 50, batch 128, wd 1e-4,
# sparsity 1e-3; DR fit 350 epochs, lr 1e-4 x0.1 at 100/200, batch 256, lambda 1e-3; MLP5
# (opts.py:131, models/cDR_MLP.py:19); Adam (0.5, 0.999) without weight decay
# (train_cdre.py:72); the last epoch kept (generate_synthetic_data.py:406-411). Real batches
# label-balanced, each fake at its real's label exactly: --dre_no_vicinal with a hard kappa of
# 1e-20 (:62-63) draws the batch's labels uniformly from the distinct training labels and a
# real image at each (train_cdre.py:108-136, generate_synthetic_data.py:401-406).
@pytest.mark.parametrize("setting", ["r5", "r15", "r25"])
def test_rc49_v1_cdrrs_fit_as_run_gen(resolved, setting):
    from cgankd.stage_options.dre import checked_dre_options, fit_dre_options

    # as the fit_dre rule passes them: the sampler's window filled in
    dre = checked_dre_options(fit_dre_options(resolved(f"rc49_v1_{setting}")))
    fit = dre["fit"]
    assert (fit["label_window"], fit["real_batches"]) == (False, "balanced")
    assert (fit["epochs"], list(fit["milestones"]), fit["gamma"], fit["lr"], fit["lam"]) == (
        350, [100, 200], 0.1, 1e-4, 1e-3)
    assert (list(fit["betas"]), fit["weight_decay"], fit["val_every"], fit["fakes"]) == (
        [0.5, 0.999], 0.0, 0, "on_the_fly")
    assert (list(dre["dr_hidden"]), dre["dr_dropout"], dre["batch_size"]) == (
        [2048, 1024, 512, 256, 128], 0.5, 256)
    assert (dre["extractor_width"], dre["ae_sparsity"], dre["ae_reg_weight"]) == (64, 1e-3, 1.0)
    ae = dre["extractor_recipe"]
    assert (ae["lr"], ae["weight_decay"], ae["batch_size"], ae["crop_pad"], ae["flip"]) == (
        0.01, 1e-4, 128, 0, False)
    assert [round(m * 200) for m in ae["milestones"]] == [50, 100, 150]


# generate_synthetic_data.py:455-483 (75408cd): the burn-in is nfake = 200 proposals
# (--samp_burnin_size is not used), discarded once it has set M; batches of 1,000
# (run_gen_r5.sh:65 --samp_batch_size 1000); every proposal at the target angle (no window);
# 200 per distinct test angle (:21-22, generate_synthetic_data.py:95).
@pytest.mark.parametrize("setting", ["r5", "r15", "r25"])
def test_rc49_v1_sampling_as_generate_synthetic_data(resolved, setting):
    cfg = resolved(f"rc49_v1_{setting}")
    opts = checked_subsample_options(options_for_method(cfg["subsample"]["options"], "cdrrs"))
    assert (opts["label_grid"], opts["per_label"], opts["n_burnin"], opts["reuse_burnin"],
            opts["batch_size"], opts["label_window"]) == ("test_labels", 200, 200, False, 1000,
                                                          False)


# UTKFace/CcGAN-based_KD/scripts/run_gen.sh (75408cd): SAGAN (:6), 40,000 iterations (:7), 4 D
# steps (:8), batch 512 D and G (:9-10), soft vicinity with m 2 and rule-of-thumb sigma (:11-12,
# 18), lr 1e-4 (:13-14), hinge (:35), dim_z 256 and widths 64 (:36-37), DiffAugment
# color,translation,cutout (:40); train_ccgan.py: betas (0.5, 0.999) (:60-61), no EMA;
# clip_label=False (generate_synthetic_data.py:293).
def test_utkface_v1_ccgan_as_run_gen(resolved):
    gan = _published_ccgan(resolved("utkface_v1"))
    assert (gan["backbone"], gan["loss"], gan["iterations"], gan["batch_size"], gan["n_dis"]) == (
        "sagan", "hinge", 40000, 512, 4)
    assert (gan["lr_g"], gan["lr_d"], list(gan["betas"]), gan["dim_z"], gan["g_ch"],
            gan["d_ch"]) == (1e-4, 1e-4, [0.5, 0.999], 256, 64, 64)
    assert gan["diffaug"] == "color,translation,cutout" and gan["ema_decay"] == 0.0
    assert (gan["label_input"], gan["vicinity"], gan["m_kappa"], gan["sigma"], gan["kappa"],
            gan["clip_label"]) == ("ili", "soft", 2.0, None, None, False)


# run_gen.sh:59-64 (75408cd): sparse AE 200 epochs, lr 0.01 x0.1 every 50, batch 128, wd 1e-4,
# sparsity 1e-3, Adam (0.5, 0.999) (train_sparseAE.py:49), flipped (:83), final weights kept
# (generate_synthetic_data.py:356-361); DR MLP5 2048..128 (models/cDR_MLP.py:19), dropout 0.5
# (:401); fit 350 epochs, lr 1e-4 x0.1 at 100/200, batch 256, lambda 1e-3, Adam without weight
# decay (train_cdre.py:84), last epoch kept; hard DRE kappa 1e-20 (:19-20): label-balanced
# real batches, fakes at the reals' labels exactly (train_cdre.py:119-148, 198-199).
def test_utkface_v1_cdrrs_as_run_gen(resolved):
    from cgankd.stage_options.dre import checked_dre_options, fit_dre_options

    dre = checked_dre_options(fit_dre_options(resolved("utkface_v1")))  # the rule's params
    fit = dre["fit"]
    assert (fit["label_window"], fit["real_batches"]) == (False, "balanced")
    assert (fit["epochs"], list(fit["milestones"]), fit["gamma"], fit["lr"], fit["lam"]) == (
        350, [100, 200], 0.1, 1e-4, 1e-3)
    assert (list(fit["betas"]), fit["weight_decay"], fit["val_every"]) == ([0.5, 0.999], 0.0, 0)
    assert (list(dre["dr_hidden"]), dre["dr_dropout"], dre["batch_size"]) == (
        [2048, 1024, 512, 256, 128], 0.5, 256)
    assert (dre["extractor_width"], dre["ae_sparsity"], dre["ae_reg_weight"]) == (64, 1e-3, 1.0)
    ae = dre["extractor_recipe"]
    assert (ae["lr"], ae["weight_decay"], ae["batch_size"], ae["crop_pad"], ae["flip"],
            ae["selection"]) == (0.01, 1e-4, 128, 0, True, "last")
    assert [round(m * 200) for m in ae["milestones"]] == [50, 100, 150]
    assert dre["extractor_optimizer"] == {"name": "adam", "betas": [0.5, 0.999]}


# generate_synthetic_data.py:457-485 (75408cd): burn-in of nfake = 5,000 proposals, discarded;
# batches of 1,000 (run_gen.sh:66); every proposal at the target age (hard kappa 1e-20, no
# window); 5,000 per distinct training age (:22-23, generate_synthetic_data.py:513-515);
# global filter at 0.7 with the VGG16's labels (:24, 93-94; generate_synthetic_data.py:609-612).
def test_utkface_v1_sampling_and_filter_as_run_gen(resolved):
    cfg = resolved("utkface_v1")
    opts = checked_subsample_options(options_for_method(cfg["subsample"]["options"], "cdrrs"))
    assert (opts["label_grid"], opts["per_label"], opts["n_burnin"], opts["reuse_burnin"],
            opts["batch_size"], opts["label_window"]) == ({"integers": [1, 60]}, 5000, 5000,
                                                          False, 1000, False)
    rung = checked_filter_options(rung_filter_options("relabelled", cfg["filter"]["options"]))
    assert (rung["mode"], rung["rho"], rung["relabel"], cfg["fake"]["final"],
            cfg["teacher"]["net"]) == ("global", 0.7, True, "relabelled", "vgg16")


# The sparse autoencoder's optimiser: Adam lr 0.01 betas (0.5, 0.999) wd 1e-4 in v1
# (RC49/CcGAN-based_KD/train_sparseAE.py:42, UTKFace/CcGAN-based_KD/train_sparseAE.py:49 at
# 75408cd); SGD momentum 0.9 in v3 (UTKFace/train_sparseAE.py:68, SteeringAngle/:60 at 8fcb117).
@pytest.mark.parametrize("name, optimizer", [
    ("rc49_v1_r5", "adam"), ("rc49_v1_r15", "adam"), ("rc49_v1_r25", "adam"),
    ("utkface_v1", "adam"), ("utkface_v3", None), ("steering_angle_v3", None)])
def test_sparse_autoencoder_optimizer_as_published(resolved, name, optimizer):
    from cgankd.stage_options.dre import checked_dre_options

    dre = checked_dre_options(resolved(name)["dre"]["options"])
    ae, choice = dre["extractor_recipe"], dre["extractor_optimizer"]
    assert (ae["lr"], ae["weight_decay"], ae["batch_size"]) == (0.01, 1e-4, 128)
    assert [round(m * 200) for m in ae["milestones"]] == [50, 100, 150]
    if optimizer is None:
        assert choice is None and (ae["momentum"], ae["nesterov"]) == (0.9, False)
    else:
        assert choice == {"name": "adam", "betas": [0.5, 0.999]}


# The v3 DR fit and sampler (8fcb117): label-balanced real batches (UTKFace/train_cdre.py:130-136,
# SteeringAngle/:116-122), the fit's window the sampler's (one --dre_kappa), psi at the target
# label, the burn-in discarded (UTKFace/generate_synthetic_data.py:538-543, SteeringAngle/
# :509-514), the final SAE and DR model kept (no held-out selection).
@pytest.mark.parametrize("name, window, flip", [
    ("utkface_v3", True, True), ("steering_angle_v3", False, False)])
def test_v3_cdrrs_fit_and_sampling_as_published(resolved, name, window, flip):
    from cgankd.stage_options.dre import checked_dre_options, fit_dre_options

    cfg = resolved(name)
    dre = checked_dre_options(fit_dre_options(cfg))
    fit = dre["fit"]
    assert (fit["label_window"], fit["real_batches"], fit["val_every"]) == (
        window, "balanced", 0)
    assert (dre["extractor_recipe"]["selection"], dre["extractor_recipe"]["flip"]) == (
        "last", flip)  # UTKFace/train_sparseAE.py:119 flips; SteeringAngle's does not
    opts = checked_subsample_options(options_for_method(cfg["subsample"]["options"], "cdrrs"))
    assert (opts["label_window"], opts["psi_label"], opts["reuse_burnin"]) == (
        window, "target", False)


def test_utkface_v1_students_as_run_nokd_fake(resolved):
    """Scripts over METHOD.md (run_nokd.sh / run_nokd_fake.sh at 3aee33b): 350 epochs over each
    variant's own set at lr 0.01, x0.1 at 150/250, and 80,000 fakes per student."""
    cfg = resolved("utkface_v1")
    recipe = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    assert recipe["budget"] == "epochs" and recipe["epochs"] == 350
    assert _epoch_milestones(recipe) == [150, 250]
    assert (recipe["lr"], recipe["lr_decay"], recipe["batch_size"], recipe["weight_decay"]) == (
        0.01, 0.1, 128, 1e-4)
    assert cfg["fake"]["count"] == 80000 and cfg["fake"]["init"] == "scratch"


@pytest.mark.parametrize("setting", ["rc49_v1_r5", "rc49_v1_r15", "rc49_v1_r25"])
def test_rc49_v1_students_350_epochs_over_each_variants_own_set(resolved, setting):
    """run_nokd_r*.sh / run_nokd+fake_r*.sh (cGAN-KD at 1629fae): 350 epochs, x0.1 at 150/250,
    over real + 50,000 fakes for cGAN-KD, not a fixed step budget."""
    from cgankd.train.recipe import resolved_steps

    cfg = resolved(setting)
    recipe = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    assert recipe["budget"] == "epochs" and recipe["epochs"] == 350
    assert _epoch_milestones(recipe) == [150, 250]
    assert (recipe["lr"], recipe["batch_size"], recipe["weight_decay"]) == (0.01, 128, 1e-4)
    real = 2250
    assert resolved_steps(recipe, real + cfg["fake"]["count"]) > 20 * resolved_steps(recipe, real)


def test_utkface_v3_baseline_350_and_finetune_240_epochs_over_own_set(resolved):
    """run_cnn.sh / run_cnn_fake.sh (cGAN-KD at d686ce7): the baseline 350 epochs (150/250);
    the fine-tune 240 epochs over real + fakes (150/180/210), not 240 epochs of the real set."""
    from cgankd.stage_options.variants import student_recipe
    from cgankd.train.recipe import resolved_steps

    cfg = resolved("utkface_v3")
    real = checked_recipe(student_recipe(cfg, "mobilenetv2", "real"), "students.recipe")
    fakes = checked_recipe(student_recipe(cfg, "mobilenetv2", "relabelled"), "students.recipe")
    assert (real["budget"], real["epochs"], _epoch_milestones(real)) == ("epochs", 350, [150, 250])
    assert (fakes["budget"], fakes["epochs"]) == ("epochs", 240)
    assert _epoch_milestones(fakes) == [150, 180, 210]
    assert (fakes["lr"], fakes["batch_size"], fakes["weight_decay"]) == (0.01, 128, 5e-4)
    n_real = 10627
    assert resolved_steps(fakes, n_real + cfg["fake"]["count"]) == -(-240 * (n_real + 60000) // 128)
    assert cfg["fake"]["init"] == "finetune"


@pytest.mark.parametrize("setting, n_real", [
    ("cifar10_v1_10k", 10000), ("cifar10_v1_20k", 20000), ("cifar10_v1_50k", 45000),
    ("tinyimagenet_v1", 90000)])
def test_v1_classification_students_350_epochs_over_own_set(resolved, setting, n_real):
    """run_nokd.sh / run_nokd_fake.sh (CIFAR at 1629fae, Tiny-ImageNet at 3aee33b): 350 epochs
    at lr 0.1, x0.1 at 150/250, over real + 100,000 fakes for cGAN-KD, not the real set's
    350-epoch step count for every variant."""
    from cgankd.train.recipe import resolved_steps

    cfg = resolved(setting)
    recipe = checked_recipe(cfg["students"]["recipe"], "students.recipe")
    assert (recipe["budget"], recipe["epochs"], recipe["lr"]) == ("epochs", 350, 0.1)
    assert _epoch_milestones(recipe) == [150, 250]
    assert resolved_steps(recipe, n_real) == -(-350 * n_real // 128)
    n_fake = cfg["fake"]["count"]
    assert n_fake == 100000
    assert resolved_steps(recipe, n_real + n_fake) == -(-350 * (n_real + n_fake) // 128)
