if TEACHER_STAGE == "import_teacher":

    rule import_teacher:
        input:
            weights=config["teacher"]["weights"],
            train=data_outputs()["train"],
            val=data_outputs()["val"],
        output:
            model=f"{RESULTS}/teacher/model.pt",
            history=f"{RESULTS}/teacher/train_history.jsonl",
        params:
            net=net_spec(config["teacher"]),
            device=config["device"],
            source_hash=stage_source_hash("import_teacher"),
        log:
            log_path("import_teacher"),
        benchmark:
            benchmark_path("import_teacher")
        threads: 1
        resources:
            mem_mb=8000,
            runtime=60,
            gpu=1,
        conda:
            "../envs/cgankd.yaml"
        script:
            "../workflow_scripts/import_teacher.py"

else:

    rule train_teacher:
        input:
            train=data_outputs()["train"],
            val=data_outputs()["val"],
        output:
            model=f"{RESULTS}/teacher/model.pt",
            history=f"{RESULTS}/teacher/train_history.jsonl",
        params:
            role="teacher",
            net=net_spec(config["teacher"]),
            recipe=config["teacher"]["recipe"],
            seed=config["teacher"]["seed"],
            device=config["device"],
            accel=config["accel"],
            source_hash=stage_source_hash("train_teacher"),
        log:
            log_path("train_teacher"),
        benchmark:
            benchmark_path("train_teacher")
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
        recipe=lambda w: student_recipe(w.fakes),
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
