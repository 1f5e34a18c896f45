rule train_cgan:
    input:
        train=data_outputs()["train"],
    output:
        generator=f"{RESULTS}/cgan/generator.pt",
        log=f"{RESULTS}/cgan/log.jsonl",
        grid=report(
            f"{RESULTS}/cgan/samples.png",
            caption="../report/cgan_grid.rst",
            category="Generated samples",
        ),
    params:
        options=config["gan"]["options"],
        seed=config["gan"]["seed"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_cgan"),
    log:
        log_path("train_cgan"),
    benchmark:
        benchmark_path("train_cgan")
    priority: 10  # the longest chain (GAN, DRE, fakes, students) starts first
    threads: 1
    resources:
        mem_mb=8000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_cgan.py"


rule fit_dre:
    input:
        train=data_outputs()["train"],
        val=data_outputs()["val"],
        generator=rules.train_cgan.output.generator,
    output:
        model=f"{RESULTS}/dre/dre.pt",
        curves=f"{RESULTS}/dre/curves.json",
    params:
        # the DR fit's label window is the sampler's unless dre.options.fit sets its own
        options=fit_dre_options(config),
        seed=config["dre"]["seed"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("fit_dre"),
    log:
        log_path("fit_dre"),
    benchmark:
        benchmark_path("fit_dre")
    priority: 10  # the longest chain (GAN, DRE, fakes, students) starts first
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/fit_dre.py"


rule subsample:
    input:
        unpack(subsample_inputs),
    output:
        pool=pool_path("{sampler}", "{chain}"),
        stats=f"{fake_dir('{chain}')}/pool_{{sampler}}_acceptance.json",
    params:
        options=lambda w: options_for_method(config["subsample"]["options"], w.sampler),
        seed=lambda w: config["subsample"]["seed"] + int(w.chain),  # one draw per fake chain
        device=config["device"],
        source_hash=stage_source_hash("subsample"),
    log:
        log_path("subsample_{sampler}/chain{chain}"),
    benchmark:
        benchmark_path("subsample_{sampler}/chain{chain}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/subsample.py"


rule select_rho:
    input:
        pool=pool_path(RUNGS[config["fake"]["final"]]["sampler"], fake_chains()[0]),
        teacher=f"{RESULTS}/teacher/model.pt",
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        selection=RHO_SELECTION,
        curve=report(
            f"{RESULTS}/fake/rho_selection.png",
            caption="../report/rho_selection.rst",
            category="Generated samples",
        ),
    params:
        options=rung_filter_options(config["fake"]["final"]),
        select=SELECT_RHO,
        **(select_rho_student() if SELECT_RHO else {}),
        fake_count=config["fake"]["count"],
        seed=config["filter"]["seed"] + int(fake_chains()[0]),  # the chain's filter seed
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("select_rho"),
    log:
        log_path("select_rho"),
    benchmark:
        benchmark_path("select_rho")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/select_rho.py"


rule filter_relabel:
    input:
        unpack(filter_inputs),
    output:
        fakes=fake_set_path("{fakes}", "{chain}"),
    params:
        options=lambda w: rung_filter_options(w.fakes),
        fake_count=config["fake"]["count"],
        seed=lambda w: config["filter"]["seed"] + int(w.chain),  # one draw per fake chain
        device=config["device"],
        source_hash=stage_source_hash("filter_relabel"),
    log:
        log_path("filter_relabel_{fakes}/chain{chain}"),
    benchmark:
        benchmark_path("filter_relabel_{fakes}/chain{chain}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/filter_relabel.py"


rule train_metric_net:
    input:
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/quality/metric_net.pt",
        history=f"{RESULTS}/quality/metric_net_history.jsonl",
    params:
        role="metric",
        net=net_spec(config["quality"]),
        recipe=config["quality"]["recipe"],
        seed=config["quality"]["seed"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_metric_net"),
    log:
        log_path("train_metric_net"),
    benchmark:
        benchmark_path("train_metric_net")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_metric_net.py"


rule train_quality_extractor:
    input:
        train=data_outputs()["train"],
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/quality/extractor.pt",
        history=f"{RESULTS}/quality/extractor_history.jsonl",
    params:
        options=config["quality"]["extractor"],
        seed=config["quality"]["seed"],
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_quality_extractor"),
    log:
        log_path("train_quality_extractor"),
    benchmark:
        benchmark_path("train_quality_extractor")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_quality_extractor.py"


rule fake_quality:
    input:
        unpack(quality_extractor_input),  # quality.features: extractor
        metric_net=rules.train_metric_net.output.model,
        real=data_outputs()["test"],
        fakes=lambda w: fake_set_path(w.fakes),  # the first chain describes the set
        reference=data_outputs()["val"],  # real in the fakes' place: the real-vs-real values
    output:
        quality=f"{RESULTS}/quality/{{fakes}}.json",
    params:
        options=config["quality"]["options"],
        device=config["device"],
        source_hash=stage_source_hash("fake_quality"),
    log:
        log_path("fake_quality_{fakes}"),
    benchmark:
        benchmark_path("fake_quality_{fakes}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/fake_quality.py"


# CAS trains the first student net; its real-only reference is that net's NOKD students.
CAS_NET = next(iter(config["students"]["nets"]), None)


rule train_cas:
    input:
        train=lambda w: fake_set_path(w.fakes),  # the set fake_quality describes
        val=data_outputs()["val"],
    output:
        model=f"{RESULTS}/quality/cas/{{fakes}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/quality/cas/{{fakes}}/seed{{seed}}/train_history.jsonl",
    wildcard_constraints:
        fakes="|".join(RUNGS),
    params:
        role="cas",
        net=lambda w: net_spec(config["students"]["nets"][CAS_NET]),
        recipe=student_recipe(CAS_NET, REAL),  # as NOKD, its real-only reference
        seed=lambda w: int(w.seed),
        identity=lambda w: {
            "student": CAS_NET,
            "fakes": w.fakes,
            "variant": f"CAS: {w.fakes} fakes alone",
        },
        device=config["device"],
        accel=config["accel"],
        source_hash=stage_source_hash("train_cas"),
    log:
        log_path("train_cas/{fakes}/seed{seed}"),
    benchmark:
        benchmark_path("train_cas/{fakes}/seed{seed}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=1,
    conda:
        "../envs/cgankd.yaml"
    script:
        "../workflow_scripts/train_cas.py"
