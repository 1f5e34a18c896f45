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
