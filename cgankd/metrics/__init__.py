"""Sample-quality measurement: FID / Intra-FID, label agreement and label score (METHOD.md s. 7)."""

from cgankd.metrics.fid import (embed, embed_with_outputs, feature_stats,
                                frechet_distance)
from cgankd.metrics.quality import sample_quality, write_quality

__all__ = ["embed", "embed_with_outputs", "feature_stats", "frechet_distance",
           "sample_quality", "write_quality"]
