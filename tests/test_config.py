"""The config schema and the checks that name the offending key in one line."""

import copy

import pytest
from conftest import REPO, SCHEMA_PATH, make_data_cfg, schema_data_defaults

from cgankd.config import config_problem, load_schema
from cgankd.config_files import load_config_file
from cgankd.data import DATASETS
from cgankd.data.prepare import load_raw
from cgankd.errors import CgankdInputError
from cgankd.options import merge_options

CONFIG_FILES = [REPO / "config" / "config.yaml",
                *sorted((REPO / "config" / "experiments").glob("*.yaml"))]


@pytest.fixture(scope="module")
def schema():
    return load_schema(SCHEMA_PATH)


def _load(path):
    return load_config_file(path)  # an experiment overlay's `base:` chain merged in


def test_there_are_experiment_files():
    assert len(CONFIG_FILES) > 5


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_repo_configs_pass_the_schema(path, schema):
    cfg = _load(path)
    assert config_problem(cfg, schema) is None
    assert cfg["experiment"] == (path.stem if path.parent.name == "experiments" else "digits")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_repo_configs_name_a_known_dataset_and_known_options(path):
    data = _load(path)["data"]
    spec = DATASETS.get(data["dataset"])
    merge_options(spec.defaults, data.get("options"), "data.options")
    if data.get("train_per_class") is not None or data.get("val_per_class") is not None:
        assert spec.task in ("classification", "any"), "per-class options on a regression set"


def test_empty_config_passes_and_every_default_is_valid(schema):
    assert config_problem({}, schema) is None
    assert config_problem({"data": schema_data_defaults()}, schema) is None


def test_snakemake_validate_fills_the_schema_defaults():
    from snakemake.utils import validate

    cfg = {"data": {"dataset": "rc49", "root": "x.h5"}}
    validate(cfg, str(SCHEMA_PATH))
    assert cfg["experiment"] == "digits" and cfg["device"] == "auto"
    assert cfg["data"] == {**schema_data_defaults(), "dataset": "rc49", "root": "x.h5"}


def _one_line(problem):
    assert problem is not None
    assert "\n" not in problem
    return problem


def test_top_level_typo_names_the_key(schema):
    problem = _one_line(config_problem({"experimnet": "x"}, schema))
    assert problem.startswith("config key experimnet: unknown key")
    known = problem.split("known keys here:")[1]
    assert all(key in known for key in ("data", "device", "experiment"))


def test_nested_typo_names_the_key_path(schema):
    cfg = copy.deepcopy(_load(REPO / "config" / "config.yaml"))
    cfg["data"]["resolutoin"] = 32
    problem = _one_line(config_problem(cfg, schema))
    assert problem.startswith("config key data.resolutoin: unknown key")
    assert "resolution" in problem.split("known keys here:")[1]  # the key that was meant


@pytest.mark.parametrize("data, key, words", [
    ({"resolution": "sixteen"}, "data.resolution", "'sixteen' is not of type 'integer'"),
    ({"resolution": 4}, "data.resolution", "minimum of 8"),
    ({"channels": 2}, "data.channels", "2 is not one of"),
    ({"seed": 1.5}, "data.seed", "not of type 'integer'"),
    ({"test_fraction": 1.0}, "data.test_fraction", "1.0"),
    ({"train_per_class": 0}, "data.train_per_class", "minimum of 1"),
    ({"download": "yes"}, "data.download", "not of type 'boolean'"),
    ({"options": ["a"]}, "data.options", "not of type 'object'"),
    ({"dataset": 3}, "data.dataset", "not of type 'string'"),
])
def test_wrong_type_or_value_names_the_key(schema, data, key, words):
    problem = _one_line(config_problem({"data": data}, schema))
    assert problem.startswith(f"config key {key}:"), problem
    assert words in problem


def test_bad_top_level_values_name_the_key(schema):
    assert config_problem({"device": "tpu"}, schema).startswith("config key device:")
    assert config_problem({"experiment": "a b"}, schema).startswith("config key experiment:")
    assert config_problem({"data": []}, schema).startswith("config key data:")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(CgankdInputError) as e:
        load_raw(make_data_cfg(dataset="mnist"))
    msg = str(e.value)
    assert "'mnist'" in msg and "\n" not in msg
    for name in DATASETS.names():
        assert name in msg


def test_unknown_dataset_option_names_data_options_key():
    with pytest.raises(CgankdInputError) as e:
        load_raw(make_data_cfg(dataset="digits_angle", options={"n_train_angels": 3}))
    msg = str(e.value)
    assert "data.options.n_train_angels" in msg and "n_train_angles" in msg
    with pytest.raises(CgankdInputError, match=r"data\.options\.anything"):
        load_raw(make_data_cfg(dataset="digits", options={"anything": 1}))  # digits takes none
