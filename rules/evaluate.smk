rule evaluate:
    input:
        model=f"{RESULTS}/{{model}}/model.pt",
        test=data_outputs()["test"],
    output:
        metrics=f"{RESULTS}/{{model}}/test_metrics.json",
    params:
        device=config["device"],
        source_hash=stage_source_hash("evaluate"),
    log:
        log_path("evaluate/{model}"),
    benchmark:
        benchmark_path("evaluate/{model}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/evaluate.py"


rule aggregate:
    input:
        metrics=all_test_metrics(),
        quality=quality_reports(),
        cas=cas_metrics(),
        train=data_outputs()["train"],  # real images beside the fakes in the sample sheets
        fakes=[fake_set_path(rung) for rung in made_rungs()],  # the first chain's sheets
        benchmarks=upstream_benchmarks(),
        convergence_base=convergence_baselines(),
        convergence=[f"{RESULTS}/{d}/test_metrics.json" for d in convergence_dirs()],
        # the rho chosen on validation and its curve, one line of table.md
        rho_selection=[RHO_SELECTION] if SELECT_RHO and config["fake"]["enabled"] else [],
    output:
        csv=report(
            f"{RESULTS}/table.csv",
            caption="../report/table.rst",
            category="Results",
        ),
        md=f"{RESULTS}/table.md",
        chart=report(
            f"{RESULTS}/variants.png",
            caption="../report/variants.rst",
            category="Results",
        ),
        sheets=report(
            f"{RESULTS}/fake_samples.png",
            caption="../report/fake_samples.rst",
            category="Generated samples",
        ),
        **({"convergence": f"{RESULTS}/convergence.json"} if convergence_dirs() else {}),
    params:
        rungs=made_rungs(),
        factor=config["convergence"]["factor"],
        source_hash=stage_source_hash("aggregate"),
    log:
        log_path("aggregate"),
    benchmark:
        benchmark_path("aggregate")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/aggregate.py"
