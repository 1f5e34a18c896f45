rule import_teacher:
    input:
        weights=lambda w: config[w.teacher]["weights"],
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/{{teacher}}/model.pt",
        history=f"{RESULTS}/{{teacher}}/train_history.jsonl",
    wildcard_constraints:
        teacher=teachers_made_by("import_teacher"),
    params:
        net=lambda w: net_spec(config[w.teacher]),
        device=config["device"],
        source_hash=stage_source_hash("import_teacher"),
    log:
        f"{RESULTS}/logs/import_{{teacher}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_{{teacher}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/import_teacher.py"


rule train_teacher:
    input:
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/{{teacher}}/model.pt",
        history=f"{RESULTS}/{{teacher}}/train_history.jsonl",
    wildcard_constraints:
        teacher=teachers_made_by("train_teacher"),
    params:
        net=lambda w: net_spec(config[w.teacher]),
        recipe=lambda w: config[w.teacher]["recipe"],
        seed=lambda w: config[w.teacher]["seed"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_teacher"),
    log:
        f"{RESULTS}/logs/train_{{teacher}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_{{teacher}}.tsv"
    priority: 10  # the longest chain (GAN, DRE, fakes, students) starts first
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_teacher.py"


rule train_student:
    input:
        unpack(student_inputs),
    output:
        model=f"{STUDENTS}/model.pt",
        history=f"{STUDENTS}/train_history.jsonl",
    params:
        net=lambda w: net_spec(config["students"]["nets"][w.student]),
        recipe=lambda w: student_recipe(w.student, w.fakes),
        kd=lambda w: kd_slice(w.method),
        label=lambda w: variant_label(w.fakes, w.method),
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_student"),
    log:
        log_path("train_student/{student}/{fakes}/{method}/seed{seed}"),
    benchmark:
        benchmark_path("train_student/{student}/{fakes}/{method}/seed{seed}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_student.py"


rule train_convergence:
    input:
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/convergence/{{conv}}/model.pt",
        history=f"{RESULTS}/convergence/{{conv}}/train_history.jsonl",
    params:
        spec=lambda w: convergence_spec(w.conv),
        factor=config["convergence"]["factor"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_convergence"),
    log:
        log_path("train_convergence/{conv}"),
    benchmark:
        benchmark_path("train_convergence/{conv}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=1200,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_convergence.py"
