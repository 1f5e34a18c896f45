"""Sample-quality measurement (METHOD.md s. 7): FID / Intra-FID, precision / recall, density /
coverage, label agreement and label score, each with a real-vs-real reference."""

from cgankd.metrics.fid import (embed, embed_with_outputs, feature_stats,
                                frechet_distance)
from cgankd.metrics.manifold import ball_hits, knn_radii, manifold_scores
from cgankd.metrics.quality import QUALITY_DEFAULTS, checked_quality_options, sample_quality

__all__ = ["QUALITY_DEFAULTS", "ball_hits", "checked_quality_options", "embed",
           "embed_with_outputs", "feature_stats", "frechet_distance", "knn_radii",
           "manifold_scores", "sample_quality"]
