"""Studies: how the method's gain depends on one factor at a time, run by one command.

A study file (``config/studies/*.yaml``) names factors, each a config key path and its levels,
and overrides applied to every point. ``python -m cgankd.study <study.yaml>`` writes one config
per (factor, level), runs the base point (the experiment with the overrides) and then each
point through Snakemake, with the base's finished outputs of every stage the point does not
change linked into the point's results folder, so shared upstream stages train once. It then
writes ``results/<experiment>-<study>/study.csv`` and ``study.png``: per point, the paired
gain of cGAN-KD over NOKD (and of cGAN-KD + X over X) with its 95 % interval.

``plan`` reads the study file, ``stages`` decides and makes the links, ``runner`` drives
Snakemake in subprocesses (the package never imports it), ``collect`` and ``figure`` report.
"""
