"""The ``fake_quality`` stage: a fake set's quality in the metric net's feature space, as JSON.

The measurement is ``cgankd.metrics.quality.sample_quality`` (METHOD.md section 7); the rule
gives the real test split, and the validation split as the real-vs-real ``reference``.
"""

import json
from pathlib import Path
from typing import Any

from cgankd.h5io import atomic_path
from cgankd.metrics.quality import sample_quality


def run(out_json: str | Path, metric_model_path: str | Path, real_h5: str | Path,
        fake_h5: str | Path, **options: Any) -> dict[str, Any]:
    """Run ``sample_quality`` and write its result to ``out_json`` atomically; return it."""
    result = sample_quality(metric_model_path, real_h5, fake_h5, **options)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
