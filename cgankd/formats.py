"""Every file kind the pipeline writes, declared once: tag, columns or fields, attributes.

Writers stamp ``tag`` (the HDF5 root attribute or torch field ``format``) and readers check
what they need against the declaration (``cgankd.h5io.check_h5``, ``check_fields`` below), so a
wrong or truncated file fails in one line naming the file and the key at fault. Tags read
``cgankd.<kind>/<version>``; ``old_tags`` lists earlier spellings a reader still accepts, so
files users already have keep loading. ``cgankd info`` (``file_info.py``) names kinds from here.

Torch-free and h5py-free: plain data, importable anywhere (plan time, the CLI, tests).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cgankd.errors import CgankdInputError

TAG_KEY = "format"  # the root attribute (HDF5) or field (torch file) holding a file's tag
RESUME_KEY = "resume_key"  # the field every resume checkpoint holds (cgankd.train.resume)
# Root attributes a file's task adds (labels are class ids, or raw values in a declared range).
TASK_ATTRS = {"classification": ("num_classes",), "regression": ("label_min", "label_max")}
LABEL_DTYPES = ("int64", "float32")  # class ids, or raw regression labels in original units


@dataclass(frozen=True)
class Column:
    """One per-sample HDF5 dataset: the first axis is the sample axis, ``tail`` axes follow."""

    name: str
    dtypes: tuple[str, ...]  # numpy dtype names a reader accepts
    tail: int  # axes after the sample axis: 0 for one value per sample, 3 for (C, H, W)
    meaning: str


@dataclass(frozen=True)
class H5Kind:
    """An HDF5 file kind: its columns (all of equal length) and required root attributes
    (besides the task's, ``TASK_ATTRS``)."""

    name: str
    title: str  # what ``cgankd info`` calls it
    tag: str
    columns: tuple[Column, ...]
    attrs: tuple[str, ...]
    old_tags: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"a {self.name} file declares no column {name!r}")  # a reader's typo

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.tag, *self.old_tags)


@dataclass(frozen=True)
class TorchKind:
    """A torch file kind (a plain dict, loaded with weights_only=True): its required fields."""

    name: str
    title: str
    tag: str | None  # None: told apart by a field (resume checkpoints of the other loops)
    fields: tuple[str, ...]
    old_tags: tuple[str, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(t for t in (self.tag, *self.old_tags) if t is not None)


IMAGES = Column("images", ("uint8",), 3, "images (N, C, H, W)")
LABELS = Column("labels", LABEL_DTYPES, 0, "class ids, or raw regression labels")
# ``index`` always means a sample's stable id: a split's row in the dataset it came from, a
# fake's accepted-proposal number within its pool (carried into the fake set), a generated
# image's position in the request. Never a row number of the file it is read from.
INDEX = Column("index", ("int64",), 0, "stable sample id")
DENSITY_RATIO = Column("density_ratio", ("float32",), 0, "psi of the fit DRE (NaN: none)")
SPLIT_COLUMNS = (IMAGES, LABELS, INDEX)

SPLIT = H5Kind(
    "split", "data split", "cgankd.split/1", SPLIT_COLUMNS, ("task",))
POOL = H5Kind(
    "pool", "fake pool", "cgankd.pool/1",
    (IMAGES, LABELS, Column("target", LABEL_DTYPES, 0, "the class / grid label proposed at"),
     DENSITY_RATIO, INDEX),
    ("task", "method", "options", "seed", "acceptance"))
FAKE_SET = H5Kind(  # one layout for every rung: unprocessed, subsampled, filtered, relabelled
    "fake_set", "fake set", "cgankd.fake-set/1",
    (IMAGES, LABELS, Column("label_original", LABEL_DTYPES, 0, "the label generated at"),
     Column("teacher_label", LABEL_DTYPES, 0, "the teacher's prediction"),
     Column("teacher_loss", ("float32",), 0, "the teacher's loss at the label generated at"),
     DENSITY_RATIO, INDEX),
    ("task", "method", "summary", "filter_options"))
GENERATED_SET = H5Kind(  # `cgankd generate`
    "generated_set", "generated set (cgankd generate)", "cgankd.generated-set/1",
    SPLIT_COLUMNS, ("task", "generator_config_hash", "seed"))

MODEL = TorchKind(
    "model", "model", "cgankd.model/1",
    ("state_dict", "net", "num_outputs", "in_channels", "task"))
GENERATOR = TorchKind(
    "generator", "generator", "cgankd.generator/1",
    ("state_dict", "backbone", "generator_kwargs", "task", "y2h_state_dict", "options"),
    old_tags=("cgankd-generator/1",))
GAN_CHECKPOINT = TorchKind(
    "gan_checkpoint", "resume checkpoint (cGAN)", "cgankd.gan-checkpoint/1",
    ("iteration", "options", RESUME_KEY), old_tags=("cgankd-gan-checkpoint/1",))
DRE = TorchKind(
    "dre", "density-ratio model", "cgankd.dre/1",
    ("task", "extractor", "extractor_kwargs", "dr", "dr_kwargs"))
QUALITY_EXTRACTOR = TorchKind(  # train_quality_extractor: the fidelity metrics' feature space
    "quality_extractor", "quality feature extractor", "cgankd.quality-extractor/1",
    ("task", "extractor", "extractor_kwargs"))
RESUME_CHECKPOINT = TorchKind(  # trainer, DRE extractor / fit and ILI checkpoints
    "resume_checkpoint", "resume checkpoint", None, (RESUME_KEY,))

H5_KINDS = (SPLIT, POOL, FAKE_SET, GENERATED_SET)
TORCH_KINDS = (MODEL, GENERATOR, GAN_CHECKPOINT, DRE, QUALITY_EXTRACTOR, RESUME_CHECKPOINT)


def h5_kind_of(tag: Any, datasets: set[str], attrs: Mapping[str, Any]) -> H5Kind | None:
    """The kind of an HDF5 file: by its tag, or (files written before tags) by the most
    specific kind whose columns and attributes it holds; None if it is none of them."""
    for kind in H5_KINDS:
        if tag in kind.tags:
            return kind
    if tag is not None:
        return None
    for kind in (FAKE_SET, POOL, GENERATED_SET, SPLIT):  # most columns / attributes first
        if {c.name for c in kind.columns} <= datasets and set(kind.attrs) <= set(attrs) \
                and (kind is not SPLIT or {"split", "dataset"} <= set(attrs)):
            return kind
    return None


def torch_kind_of(blob: Mapping[str, Any]) -> TorchKind | None:
    """The kind of a loaded torch file, by its tag (old spellings too) or resume key."""
    tag = blob.get(TAG_KEY)
    for kind in TORCH_KINDS:
        if tag is not None and tag in kind.tags:
            return kind
    return RESUME_CHECKPOINT if tag is None and RESUME_KEY in blob else None


def check_fields(blob: Any, kind: TorchKind, path: Any) -> dict[str, Any]:
    """``blob`` if it is a file of ``kind`` with every declared field, else one line naming
    the file and the tag or field at fault."""
    if not isinstance(blob, Mapping):
        raise CgankdInputError(f"{path}: not a cgankd {kind.title} file (a "
                               f"{type(blob).__name__}, not a dict)")
    if kind.tag is not None and blob.get(TAG_KEY) not in kind.tags:
        raise CgankdInputError(f"{path}: not a cgankd {kind.title} file ({TAG_KEY} "
                               f"{blob.get(TAG_KEY)!r}, expected {kind.tag!r})")
    missing = [name for name in kind.fields if name not in blob]
    if missing:
        raise CgankdInputError(f"{path}: {kind.title} file lacks field {missing[0]!r}")
    return dict(blob)
