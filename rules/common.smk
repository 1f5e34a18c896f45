# Config validation, result paths and helpers shared by every rule file.
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # the cgankd package beside this workflow
from cgankd.config import config_problem, load_schema
from cgankd.config_files import configfiles_config, partial_config_warning
from cgankd.errors import CgankdInputError
from cgankd.stage_options import check_config
from cgankd.stage_options.plan import fill_kd_teacher
from cgankd.stage_options.dre import fit_dre_options
from cgankd.stage_options.fake import checked_select_rho
from cgankd.stage_options import variants
from cgankd.stage_options.ladder import REAL, RUNGS, options_for_method
from cgankd.stage_options.ladder import rung_filter_options as _rung_filter_options
from cgankd.stage_options.nets import net_source_sha256
from cgankd.rerun_hash import stage_source_hash

SCHEMA = f"{workflow.basedir}/config/schema.yaml"
try:  # a --configfile with `base:` (cgankd/config_files.py): rebuild config, --config on top
    _resolved = configfiles_config(workflow.overwrite_configfiles, workflow.config_settings.config)
except CgankdInputError as error:
    raise WorkflowError(str(error)) from None
if _resolved is not None:
    config.clear()
    config.update(_resolved)
_partial = partial_config_warning(workflow.overwrite_configfiles, config)
if _partial:  # before validate() fills the schema's defaults in
    print(_partial, file=sys.stderr)
_problem = config_problem(config, load_schema(SCHEMA))
if _problem:
    raise WorkflowError(_problem)
validate(config, SCHEMA)  # fills the schema's defaults into config
fill_kd_teacher(config)
try:  # every stage's options, registry names and cross-field checks, before any job
    check_config(config)
except CgankdInputError as error:
    raise WorkflowError(f"config: {error}") from None

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


STUDENTS = f"{RESULTS}/students/{{student}}/{{fakes}}/{{method}}/seed{{seed}}"

# The ablation ladder (RUNGS, REAL: which pool each rung filters, what the teacher does to
# it, which options it keeps) lives in cgankd/stage_options/ladder.py.


wildcard_constraints:
    student="|".join(config["students"]["nets"]) or "(?!)",
    method="[A-Za-z0-9_]+",
    seed="[0-9]+",
    fakes="|".join([REAL, *RUNGS]),
    sampler="none|cdrrs",
    chain="[0-9]+",
    conv="teacher|(" + ("|".join(config["students"]["nets"]) or "(?!)") + r")/seed[0-9]+",


def net_spec(section):
    """{net, kwargs} of a teacher, student or metric-net section: what builds the net. A net
    named by import path also gets its module's hash, so editing that file reruns it."""
    spec = {"net": section["net"], "kwargs": section.get("kwargs", {})}
    source = net_source_sha256(section["net"], "net")
    return spec if source is None else {**spec, "source_sha256": source}


# The teachers: "teacher" filters and relabels the fakes and, unless a separate kd_teacher is
# configured, is the KD teacher too. Each is trained (train_teacher) or, when its section gives
# weights, imported (import_teacher); the wildcard {teacher} names the section and the folder.
TEACHERS = ["teacher"] + (["kd_teacher"] if config["kd_teacher"] else [])
KD_TEACHER = TEACHERS[-1]
TEACHER_STAGE = "import_teacher" if config["teacher"]["weights"] else "train_teacher"


def teachers_made_by(stage):
    """The teacher sections that ``stage`` makes, as a wildcard pattern; "(?!)" for none."""
    given = [t for t in TEACHERS if config[t]["weights"]]
    names = given if stage == "import_teacher" else [t for t in TEACHERS if t not in given]
    return "|".join(names) or "(?!)"


def kd_teacher_metrics():
    """A separate KD teacher's test score: reported beside the table, not a row of it (the
    table's teacher, whose gap the students close, is the filter teacher)."""
    return [f"{RESULTS}/kd_teacher/test_metrics.json"] if KD_TEACHER != "teacher" else []


def kd_slice(method):
    """The KD settings one method uses, so tuning one method reruns only its students."""
    weights = config["kd"]["weights"]
    options = config["kd"]["options"]
    terms = {"kd", method}
    kd = {
        "weights": {m: w for m, w in weights.items() if m == method},
        "options": {t: o for t, o in options.items() if t in terms},
    }
    if method not in ("none", "kd"):  # the convention sets only the other methods' alpha
        kd["convention"] = config["kd"]["convention"]
    return kd


# filter.select_rho (null: off): the select_rho rule chooses the final rung's rho on the
# validation split (cgankd/stages/select_rho.py); that rung's filter_relabel jobs, of every
# fake chain, read it from RHO_SELECTION instead of filter.options.rho.
SELECT_RHO = checked_select_rho(config["filter"].get("select_rho"))
RHO_SELECTION = f"{RESULTS}/fake/rho_selection.json"


def rho_selected(rung):
    """Whether ``rung`` filters at the rho chosen on validation."""
    return SELECT_RHO is not None and rung == config["fake"]["final"]


def rung_filter_options(rung):
    """The filter options a rung uses (cgankd/stage_options/ladder.py); a rung whose rho is
    chosen on validation gets it from the selection file, so rho is not among them."""
    options = _rung_filter_options(rung, config["filter"]["options"])
    if rho_selected(rung):
        options.pop("rho", None)
    return options


def filter_inputs(wildcards):
    inputs = {"pool": pool_path(RUNGS[wildcards.fakes]["sampler"], wildcards.chain),
              "teacher": f"{RESULTS}/teacher/model.pt"}
    if rho_selected(wildcards.fakes):
        inputs["rho_selection"] = RHO_SELECTION
    return inputs


def select_rho_student():
    """What the rho selection trains: the first student net, the fakes' recipe with the
    selection's overrides."""
    name = next(iter(config["students"]["nets"]))
    recipe = {**student_recipe(name, config["fake"]["final"]), **SELECT_RHO["recipe"]}
    return {"student": name, "net": net_spec(config["students"]["nets"][name]),
            "recipe": recipe}


def fake_chains():
    return variants.fake_chains(config)


def chain_of_seed(seed):
    """The fake chain the i-th student seed trains on: fake.seeds[i % len(fake.seeds)], so the
    chain's sampling and filtering randomness enters the spread over student seeds."""
    seeds, chains = config["students"]["seeds"], config["fake"]["seeds"]
    if int(seed) not in seeds:
        raise WorkflowError(f"config key students.seeds: student seed {seed} is not listed, so "
                            f"no fake chain is assigned to it")
    return chains[seeds.index(int(seed)) % len(chains)]


def fake_dir(chain):
    return f"{RESULTS}/fake/chain{chain}"


def pool_path(sampler, chain):
    return f"{fake_dir(chain)}/pool_{sampler}.h5"


def fake_set_path(rung, chain=None):
    """A ladder rung's fake set from one chain; chain None = the first chain, which the quality
    reports and sample sheets describe."""
    return f"{fake_dir(fake_chains()[0] if chain is None else chain)}/{rung}.h5"


def subsample_inputs(wildcards):
    inputs = {"generator": f"{RESULTS}/cgan/generator.pt"}
    if wildcards.sampler == "cdrrs":
        inputs["dre"] = f"{RESULTS}/dre/dre.pt"
    if config["subsample"]["options"].get("label_grid") == "test_labels":  # the RC-49 grid
        inputs["test_labels"] = data_outputs()["test"]
    return inputs


def student_inputs(wildcards):
    inputs = {"train": data_outputs()["train"], "val": data_outputs()["val"]}
    if wildcards.method != "none":
        inputs["teacher"] = f"{RESULTS}/{KD_TEACHER}/model.pt"
    if wildcards.fakes != REAL:
        inputs["fakes"] = fake_set_path(wildcards.fakes, chain_of_seed(wildcards.seed))
        if config["fake"]["init"] == "finetune":
            inputs["init"] = (
                f"{RESULTS}/students/{wildcards.student}/{REAL}/none/"
                f"seed{wildcards.seed}/model.pt"
            )
    return inputs


def variant_label(fakes, method):
    """The row name in the results table, in the paper's vocabulary."""
    if fakes == REAL:
        return "NOKD" if method == "none" else method.upper()
    if fakes == config["fake"]["final"]:
        return "cGAN-KD" if method == "none" else f"cGAN-KD + {method.upper()}"
    return f"ablation: {fakes} fakes"


def student_variants():
    return variants.student_variants(config)


def used_rungs():
    return variants.used_rungs(config)


def student_dirs():
    return [
        f"students/{name}/{fakes}/{method}/seed{seed}"
        for name in config["students"]["nets"]
        for fakes, method in student_variants()
        for seed in config["students"]["seeds"]
    ]


def all_test_metrics():
    return [f"{RESULTS}/{d}/test_metrics.json" for d in ["teacher", *student_dirs()]]


def convergence_dirs():
    """The convergence check's runs: the teacher and NOKD of every student net and seed, each
    retrained with convergence.factor times its budget."""
    if not config["convergence"]["enabled"]:
        return []
    return given_teacher_or(["convergence/teacher"]) + [
        f"convergence/{name}/seed{seed}"
        for name in config["students"]["nets"]
        for seed in config["students"]["seeds"]
    ]


def given_teacher_or(teacher_runs):
    """The teacher's convergence runs, or none for a given teacher: it has no budget here."""
    return [] if config["teacher"]["weights"] else teacher_runs


def convergence_baselines():
    """The 1x-budget runs the convergence check compares with: the teacher and NOKD."""
    if not config["convergence"]["enabled"]:
        return []
    return given_teacher_or([f"{RESULTS}/teacher/test_metrics.json"]) + [
        f"{RESULTS}/students/{name}/{REAL}/none/seed{seed}/test_metrics.json"
        for name in config["students"]["nets"]
        for seed in config["students"]["seeds"]
    ]


def student_recipe(student, fakes):
    return variants.student_recipe(config, student, fakes)


def convergence_spec(conv):
    """What a convergence run trains: the teacher's or a NOKD student's own settings; only the
    budget differs (scaled at job time, where the recipe defaults are known)."""
    if conv == "teacher":
        t = config["teacher"]
        return {"role": "teacher", "net": net_spec(t), "recipe": t["recipe"],
                "seed": t["seed"], "where": "teacher.recipe", "identity": {"variant": "teacher"}}
    name, seed = conv.rsplit("/", 1)  # <student>/seed<k>, as the conv wildcard allows
    return {"role": "student", "net": net_spec(config["students"]["nets"][name]),
            "recipe": student_recipe(name, REAL), "seed": int(seed.removeprefix("seed")),
            "where": "students.recipe",
            "identity": {"student": name, "fakes": REAL, "variant": variant_label(REAL, "none")}}


def quality_rungs():
    return variants.quality_rungs(config)


def made_rungs():
    return variants.made_rungs(config)


def quality_extractor_input(wildcards):
    """fake_quality's extractor file under quality.features: extractor; none otherwise."""
    if config["quality"]["features"] != "extractor":
        return {}
    return {"extractor": f"{RESULTS}/quality/extractor.pt"}


def quality_reports():
    return [f"{RESULTS}/quality/{rung}.json" for rung in quality_rungs()]


def cas_metrics():
    """Test metrics of the CAS models (the first student net trained on one used rung's fakes
    alone, per quality.cas_seeds seed) and of their real-only reference, that net's NOKD
    students of the same seeds."""
    quality, nets = config["quality"], list(config["students"]["nets"])
    if not (config["fake"]["enabled"] and quality["enabled"] and quality["cas"] and nets):
        return []
    seeds = quality["cas_seeds"]
    files = [f"{RESULTS}/quality/cas/{r}/seed{s}/test_metrics.json"
             for r in quality_rungs() for s in seeds]
    return files + [f"{RESULTS}/students/{nets[0]}/{REAL}/none/seed{s}/test_metrics.json"
                    for s in seeds]


def upstream_benchmarks():
    """Benchmark files of every job the table depends on: the stage wall times it reports."""
    stages = ["prepare_data", TEACHER_STAGE]
    stages += [f"train_student/{d.removeprefix('students/')}" for d in student_dirs()]
    stages += [f"evaluate/{d}" for d in ["teacher", *student_dirs(), *convergence_dirs()]]
    stages += [f"train_convergence/{d.removeprefix('convergence/')}" for d in convergence_dirs()]
    if config["fake"]["enabled"]:
        stages += ["train_cgan", "fit_dre", *(["select_rho"] if SELECT_RHO else [])]
        first = fake_chains()[0]
        for chain in fake_chains():
            # students read every chain; quality and the sheets read the first one only
            rungs = made_rungs() if chain == first else used_rungs()
            samplers = sorted({RUNGS[r]["sampler"] for r in rungs})
            stages += [f"subsample_{s}/chain{chain}" for s in samplers]
            stages += [f"filter_relabel_{r}/chain{chain}" for r in rungs]
        if config["quality"]["enabled"]:
            stages += ["train_metric_net", *[f"fake_quality_{r}" for r in quality_rungs()]]
            if config["quality"]["features"] == "extractor":
                stages.append("train_quality_extractor")
        if cas_metrics():
            stages += [f"train_cas/{r}/seed{s}" for r in quality_rungs()
                       for s in config["quality"]["cas_seeds"]]
    return [benchmark_path(stage) for stage in stages]
