"""Subsampling of generated samples: density-ratio rejection sampling and the label window."""

from cgankd.sampling.rejection import RejectionResult, in_window, rejection_sample, window_labels

__all__ = ["RejectionResult", "in_window", "rejection_sample", "window_labels"]
