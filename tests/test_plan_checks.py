"""Config mistakes caught when Snakemake plans the run: torch-free option modules, registry
names mirrored without torch, one-line errors naming the config path, plain path names."""

import copy
import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, SCHEMA_PATH

from cgankd.errors import CgankdInputError
from cgankd.stage_options import check_config
from cgankd.stage_options import names
from cgankd.stage_options.ladder import RUNGS, rung_filter_options

CONFIG_FILES = [REPO / "config" / "config.yaml",
                *sorted((REPO / "config" / "experiments").glob("*.yaml"))]


def _filled(cfg):
    """The config as the workflow checks it: the schema's defaults filled in."""
    from snakemake.utils import validate

    cfg = copy.deepcopy(cfg)
    validate(cfg, str(SCHEMA_PATH))
    return cfg


@pytest.fixture(scope="module")
def default_config():
    return _filled(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


def test_option_modules_import_no_torch_and_pass_every_repo_config():
    """In a fresh interpreter where importing torch fails, the checks run on every config."""
    script = f"""
import sys, json, yaml
sys.modules["torch"] = None  # any import of torch now raises
sys.path.insert(0, {str(REPO)!r})
from snakemake.utils import validate
from cgankd.stage_options import check_config
from cgankd.config_files import load_config_file
import cgankd.stage_options.ladder
for path in {json.dumps([str(p) for p in CONFIG_FILES])}:
    cfg = load_config_file(path)
    validate(cfg, {str(SCHEMA_PATH)!r})
    check_config(cfg)
print("checked", len({json.dumps([str(p) for p in CONFIG_FILES])}))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"checked {len(CONFIG_FILES)}" in run.stdout


def test_torch_free_names_equal_the_registries():
    from cgankd.data import DATASETS
    from cgankd.gan.diffaug import POLICIES
    from cgankd.gan.losses import GAN_LOSSES
    from cgankd.gan.models import DEFAULT_D_MULTS, DEFAULT_G_MULTS, GANS
    from cgankd.kd.build import KD_LOSSES
    from cgankd.nets.zoo import NETS, _options_of

    assert {n: set(k) for n, k in names.NET_OPTIONS.items()} == {
        n: set(_options_of(NETS.get(n))) for n in NETS.names()}
    assert {n: (set(t), set(k)) for n, (t, k) in names.KD_TERMS.items()} == {
        n: (set(KD_LOSSES.get(n).tasks), set(KD_LOSSES.get(n).DEFAULTS))
        for n in KD_LOSSES.names()}
    assert {n: (t, set(k)) for n, (t, k) in names.DATASETS.items()} == {
        n: (DATASETS.get(n).task, set(DATASETS.get(n).defaults)) for n in DATASETS.names()}
    assert sorted(names.GAN_BACKBONES) == GANS.names()
    assert sorted(names.GAN_LOSSES) == GAN_LOSSES.names()
    assert list(names.DIFFAUG_POLICIES) == list(POLICIES)
    assert set(names.GAN_MULTS_RESOLUTIONS) == set(DEFAULT_G_MULTS) == set(DEFAULT_D_MULTS)


def test_stage_code_uses_the_same_defaults():
    """Defaults defined once: the stage modules hold the option modules' own objects."""
    from cgankd.dre import fit
    from cgankd.gan import label_embedding
    from cgankd.kd import objective
    from cgankd.metrics import QUALITY_DEFAULTS
    from cgankd.stage_options import dre, fake, gan, kd, quality, recipe
    from cgankd.stages import filter_relabel, fit_dre, subsample, train_cgan
    from cgankd.train import recipe as train_recipe

    assert train_cgan.DEFAULTS is gan.GAN_DEFAULTS
    assert label_embedding.ILI_DEFAULTS is gan.ILI_DEFAULTS
    assert fit.DEFAULTS is dre.FIT_DEFAULTS and fit_dre.DRE_DEFAULTS is dre.DRE_DEFAULTS
    assert filter_relabel.FILTER_DEFAULTS is fake.FILTER_DEFAULTS
    assert subsample.SUBSAMPLE_DEFAULTS is fake.SUBSAMPLE_DEFAULTS
    assert train_recipe.RECIPE_DEFAULTS is recipe.RECIPE_DEFAULTS
    assert QUALITY_DEFAULTS is quality.QUALITY_DEFAULTS
    assert objective.checked_weights is kd.checked_weights


def _set(cfg, path, value):
    *parents, last = path.split(".")
    for key in parents:
        cfg = cfg.setdefault(key, {})
    cfg[last] = value


# (config path set, value, the line's start): the mistakes first, then the rest.
MISTAKES = [
    ("filter.options.rho", 1.5, "filter.options.rho: must be a number in (0, 1]"),
    ("students.methods", ["none", "kdd"], "students.methods[1]: unknown KD method 'kdd'"),
    ("kd.weights", {"kd": {"alpah": 0.5}}, "unknown option kd.weights.kd.alpah"),
    ("kd.weights", {"kdd": {"alpha": 0.5}}, "kd.weights: unknown KD method 'kdd'"),
    ("kd.options", {"kd": {"temprature": 3}}, "unknown option kd.options.kd.temprature"),
    ("filter.options.rhoo", 0.5, "unknown option filter.options.rhoo"),
    ("data.resolution", 12, "data.resolution: 12 is not a power of two"),
    ("teacher.net", "resnet9000", "teacher.net: unknown net 'resnet9000'"),
    ("students.nets", {"s": {"net": "cnnn"}}, "students.nets.s.net: unknown net 'cnnn'"),
    ("teacher.kwargs", {"widht": 8}, "unknown option teacher.kwargs.widht"),
    ("students.nets", {"r8": {"net": "resnet8", "kwargs": {"width": 2}}},
     "students.nets.r8.kwargs: net 'resnet8' takes no options"),
    ("experiment", "..", "experiment: '..' is not a plain name"),
    ("students.nets", {"../../../../escaped": {"net": "cnn"}},
     "students.nets.../../../../escaped: '../../../../escaped' is not a plain name"),
    ("filter.options.relabel", True, "filter.options.relabel: set by each ladder rung"),
    ("subsample.options.method", "none", "subsample.options.method: set by each ladder rung"),
    ("fake.kd_methods", ["kd", "../x"], "fake.kd_methods[1]: unknown KD method '../x'"),
    ("fake.count", 8000, "fake.count: 8000 fakes over 10 classes need 800 per class"),
    ("filter.options", {"mode": "per_class", "rho": 0.9, "burnin": 250, "burnin_separate": True},
     "filter.options.burnin_separate: 250 burn-in samples per class kept apart plus a quota of "
     "500 need 750 per class, more than subsample.options.per_class 700"),
    ("filter.options.burnin_separate", "yes", "filter.options.burnin_separate: must be"),
    ("filter.options.rho", 0.5, "fake.count: 5000 fakes over 10 classes need 500 per class, "
     "more than subsample.options.per_class 700 keeps at filter.options.rho 0.5"),
    ("gan.options.native_resolution", 32, "gan.options.native_resolution: 32 must be"),
    ("gan.options.diffaug", "color,colour", "gan.options.diffaug: unknown DiffAugment policy"),
    ("gan.options.backbone", "stylegan", "gan.options.backbone: unknown GAN backbone"),
    ("gan.options.iterations", 0, "gan.options.iterations: must be an integer >= 1"),
    ("dre.options.fit", {"epoch": 3}, "unknown option dre.options.fit.epoch"),
    ("dre.options.extractor_recipe", {"stpes": 3},
     "unknown option dre.options.extractor_recipe.stpes"),
    ("subsample.options.per_clas", 3, "unknown option subsample.options.per_clas"),
    ("quality.options.pr_kk", 3, "unknown option quality.options.pr_kk"),
    ("quality.net", "vgg99", "quality.net: unknown net 'vgg99'"),
    ("students.recipe.lr", "fast", "students.recipe.lr: must be a number"),
    ("students.seeds", [0, 0], "students.seeds: seeds must be distinct"),
    ("data.dataset", "mnist", "data.dataset: unknown dataset 'mnist'"),
    ("data.options", {"n_test": 5}, "unknown option data.options.n_test"),
]


@pytest.mark.parametrize("path, value, line", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_one_line_naming_its_config_path(default_config, path, value, line):
    cfg = copy.deepcopy(default_config)
    _set(cfg, path, value)
    with pytest.raises(CgankdInputError) as caught:
        check_config(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(line), message


def test_the_pool_counts_the_filters_rho_only_where_a_rung_filters(default_config):
    """rho 0.5 keeps ~350 of a pool of 700 per class, short of a quota of 500: refused at plan
    time when the final rung, the ladder or the quality stage filters, planned when none does."""
    cfg = copy.deepcopy(default_config)
    cfg["filter"]["options"]["rho"] = 0.5
    cfg["fake"].update(final="subsampled", ladder=False)
    cfg["quality"]["enabled"] = False
    check_config(cfg)  # nothing filters: the pool of 700 holds the 500
    for path, value in (("fake.final", "filtered"), ("fake.ladder", True),
                        ("quality.enabled", True)):
        again = copy.deepcopy(cfg)
        _set(again, path, value)
        with pytest.raises(CgankdInputError, match="keeps at filter.options.rho 0.5"):
            check_config(again)


def test_task_aware_checks_on_the_regression_default():
    cfg = _filled(yaml.safe_load((REPO / "config" / "experiments" / "digits_angle.yaml")
                                 .read_text()))
    check_config(cfg)
    for path, value, line in [
            ("students.methods", ["none", "crd"], "students.methods[1]: KD method 'crd' does "
                                                  "not apply to regression"),
            ("data.train_per_class", 5, "data.train_per_class: a per-class option"),
            ("fake.count", 10**6, "fake.count: 1000000 fakes cannot come from a pool")]:
        bad = copy.deepcopy(cfg)
        _set(bad, path, value)
        with pytest.raises(CgankdInputError) as caught:
            check_config(bad)
        assert str(caught.value).startswith(line), str(caught.value)


def test_fake_stage_options_are_not_checked_when_fakes_are_off(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["fake"]["enabled"] = False
    cfg["data"]["resolution"] = 12  # only the GAN needs a power of two
    check_config(cfg)


def test_the_ladder_keeps_only_the_options_each_rung_uses():
    options = {"mode": "per_class", "rho": 0.7, "burnin": 50, "batch_size": 8}
    assert rung_filter_options("unprocessed", options) == {"batch_size": 8, "mode": "none",
                                                           "relabel": False}
    assert rung_filter_options("relabelled", options) == {**options, "relabel": True}
    assert [r for r in RUNGS if RUNGS[r]["sampler"] == "none"] == ["unprocessed"]


def _dry_run(tmp_path, *args):
    return subprocess.run([str(REPO / ".venv" / "bin" / "snakemake"), "-n", "-q",
                           "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["rho", "escaped_net", "experiment"])
def test_snakemake_dry_run_fails_with_the_line(tmp_path, case):
    """The real planning step: no job runs, the console shows the one line."""
    if case == "experiment":
        run = _dry_run(tmp_path, "--config", "experiment=..")
        line = "experiment"  # the schema's pattern or check_config: either names the key
    else:  # a temp config file: --config would pass a nested 1.5 as the string '1.5'
        cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        if case == "rho":
            cfg["filter"]["options"]["rho"] = 1.5
            line = "filter.options.rho: must be a number in (0, 1], got 1.5"
        else:
            cfg["students"]["nets"] = {"../../../../escaped": {"net": "cnn"}}
            line = "students.nets.../../../../escaped: '../../../../escaped' is not a plain name"
        path = tmp_path / f"{case}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        run = _dry_run(tmp_path, "--configfile", str(path))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert line in output, output[-2000:]
    assert "Traceback" not in output
    assert not (tmp_path / "results").exists()


def test_a_study_level_with_a_mistake_fails_before_any_point_runs(tmp_path):
    """cgankd.study plans points outside Snakemake: the same checks run on every point."""
    from cgankd.config import load_schema
    from cgankd.study.plan import load_study, plan_points

    path = tmp_path / "rho.yaml"
    path.write_text("factors:\n  rho: {key: filter.options.rho, levels: [0.95, 1.5]}\n")
    experiment = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    with pytest.raises(CgankdInputError) as caught:
        plan_points(load_study(path), experiment, load_schema(SCHEMA_PATH))
    assert str(caught.value) == (f"{path}: factors.rho.levels.1.5: filter.options.rho: must be "
                                 f"a number in (0, 1], got 1.5")
