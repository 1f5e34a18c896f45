"""Every stage's options: defaults defined once, with their checks, in modules that import no
torch, so the workflow checks the whole config when it plans the run (``check_config``). The
stage code imports its options from here too.

One module per stage: ``data`` (prepare_data), ``nets`` and ``recipe`` (train_teacher,
train_student, train_metric_net, train_convergence), ``kd`` (the students' KD methods),
``gan`` (train_cgan), ``dre`` (fit_dre), ``fake`` (subsample, filter_relabel), ``ladder`` (the
ablation ladder's rungs), ``quality`` (fake_quality); ``names`` lists the registries' names.
"""

from cgankd.stage_options.plan import check_config

__all__ = ["check_config"]
