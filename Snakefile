# cgankd: cGAN-KD as a pipeline. Each include below is one stage of the method.
# Run:  snakemake --cores all                       (the embedded digits default)
#       snakemake --cores all --configfile config/experiments/<name>.yaml
from snakemake.utils import min_version

min_version("9.0")


# The default config is read only when no --configfile is given: Snakemake would otherwise
# deep-merge the digits defaults into every experiment file.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/cgan.smk"
include: "rules/evaluate.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/table.md",
        quality_reports(),
        kd_teacher_metrics(),


onsuccess:
    print(f"\ncgankd: results table: {RESULTS}/table.md (also table.csv, variants.png, "
          f"fake_samples.png); HTML report: snakemake --report report.html\n")
