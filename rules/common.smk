# Config validation, result paths and helpers shared by every rule file.
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # the cgankd package beside this workflow
from cgankd.config import config_problem, load_schema
from cgankd.stages import stage_source_hash

SCHEMA = f"{workflow.basedir}/config/schema.yaml"
_problem = config_problem(config, load_schema(SCHEMA))
if _problem:
    raise WorkflowError(_problem)
validate(config, SCHEMA)  # fills the schema's defaults into config

EXPERIMENT = config["experiment"]
RESULTS = f"results/{EXPERIMENT}"
SPLITS = ("train", "val", "test")


wildcard_constraints:
    split="|".join(SPLITS),


def data_outputs():
    return {split: f"{RESULTS}/data/{split}.h5" for split in SPLITS}


def log_path(stage):
    return f"{RESULTS}/logs/{stage}.log"


def benchmark_path(stage):
    return f"{RESULTS}/benchmarks/{stage}.tsv"


STUDENTS = f"{RESULTS}/students/{{student}}/{{method}}/seed{{seed}}"


wildcard_constraints:
    student="|".join(config["students"]["nets"]) or "(?!)",
    method="[A-Za-z0-9_]+",
    seed="[0-9]+",


def net_spec(section):
    """{net, kwargs} of a teacher or student section: what builds the net, nothing more."""
    return {"net": section["net"], "kwargs": section.get("kwargs", {})}


def kd_slice(method):
    """The KD settings one method uses, so tuning one method reruns only its students."""
    weights = config["kd"]["weights"]
    options = config["kd"]["options"]
    terms = {"kd", method}
    return {
        "weights": {m: w for m, w in weights.items() if m == method},
        "options": {t: o for t, o in options.items() if t in terms},
    }


def student_inputs(wildcards):
    inputs = {"train": data_outputs()["train"], "val": data_outputs()["val"]}
    if wildcards.method != "none":
        inputs["teacher"] = f"{RESULTS}/teacher/model.pt"
    return inputs


def student_dirs():
    s = config["students"]
    return [
        f"students/{name}/{method}/seed{seed}"
        for name in s["nets"]
        for method in s["methods"]
        for seed in s["seeds"]
    ]


def all_test_metrics():
    return [f"{RESULTS}/{d}/test_metrics.json" for d in ["teacher", *student_dirs()]]
