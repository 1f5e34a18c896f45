"""The ``fake_quality`` stage: a fake set's quality in the metric net's feature space (or the
quality extractor's), as JSON.

The measurement is ``cgankd.metrics.quality.sample_quality`` (METHOD.md section 7); the rule
gives the real test split, and the validation split as the real-vs-real ``reference``.
"""

import json
from pathlib import Path
from typing import Any

from cgankd.h5io import atomic_path
from cgankd.metrics.quality import sample_quality


def run(quality: str | Path, metric_net: str | Path, real: str | Path, fakes: str | Path,
        reference: str | Path | None = None, extractor: str | Path | None = None,
        **options: Any) -> dict[str, Any]:
    """Run ``sample_quality`` on the fake set ``fakes`` against the split ``real`` (and the
    split ``reference`` in the fakes' place) in ``metric_net``'s features, or ``extractor``'s
    (quality.features: extractor); write its result to ``quality`` atomically; return it."""
    result = sample_quality(metric_net, real, fakes, reference_h5=reference,
                            extractor_path=extractor, **options)
    with atomic_path(quality) as tmp:
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
