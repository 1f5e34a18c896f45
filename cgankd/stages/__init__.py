"""One module per workflow rule, named like the rule and its adapter ``workflow_scripts/<rule>.py``.

Each module's ``run(**kwargs)`` is the rule's file-level entry: it reads the input files, calls
the algorithm code (``nets``, ``kd``, ``gan``, ``dre``, ``sampling``, ``filtering``,
``metrics``, ``report``) and writes the outputs. A rule's source hash is the import graph of
its module (``cgankd.rerun_hash``). Modules whose names start with ``_`` are shared by several
rules (``_training``: the five training rules) and are not rules.

Imports nothing on purpose: importing one stage must not import the others, or every rule's
hash would cover every stage.
"""
