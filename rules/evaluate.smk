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
    output:
        csv=f"{RESULTS}/table.csv",
        md=f"{RESULTS}/table.md",
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
