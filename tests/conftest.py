"""Shared test helpers: the ``data:`` config section with the schema's defaults filled in."""

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "config" / "schema.yaml"
SPLIT_NAMES = ("train", "val", "test")


def schema_data_defaults() -> dict:
    """Every ``data.*`` key with its default from config/schema.yaml."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    props = schema["properties"]["data"]["properties"]
    return {key: copy.deepcopy(spec.get("default")) for key, spec in props.items()}


def make_data_cfg(**overrides) -> dict:
    """A ``data:`` section as ``prepare_data`` receives it: schema defaults, then overrides."""
    cfg = schema_data_defaults()
    unknown = set(overrides) - set(cfg)
    if unknown:  # a typo in a test must not silently fall back to a default
        raise KeyError(f"not data.* keys: {sorted(unknown)}")
    cfg.update(copy.deepcopy(overrides))
    return cfg


def default_data_cfg(**overrides) -> dict:
    """config/config.yaml's ``data:`` section, schema defaults filled, then overrides."""
    section = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["data"]
    return make_data_cfg(**{**section, **overrides})


def split_outputs(folder: Path) -> dict[str, Path]:
    return {name: Path(folder) / f"{name}.h5" for name in SPLIT_NAMES}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty output folder for the three split files."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run torch on one thread: on a shared 2-core machine, two threads busy-wait on
    tiny batches and run tens of times slower. Session scope, so module-scoped fixtures that
    train nets run under it too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Killed(Exception):
    """A job killed mid-run (raised where a checkpoint was just saved)."""


def kill_after(monkeypatch, desc: str, done: int) -> None:
    """Make the resumable loop ``desc`` ("dre fit", "cGAN", ...) raise Killed right after the
    checkpoint it saves at ``done`` units, as a kill between two saves would leave it."""
    from cgankd.train.resume import Resume

    def stop_if_asked(self, finished):
        if self.desc == desc and finished == done:
            raise Killed
    monkeypatch.setattr(Resume, "stop_if_asked", stop_if_asked)
