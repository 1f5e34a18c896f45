rule prepare_data:
    output:
        **data_outputs(),
    params:
        data=config["data"],
        source_hash=stage_source_hash("prepare_data"),
    log:
        log_path("prepare_data"),
    benchmark:
        benchmark_path("prepare_data")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/prepare_data.py"
