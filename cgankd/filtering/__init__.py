"""Teacher filtering and label replacement of generated samples."""

from cgankd.filtering.filter import (classification_losses, global_quantile_cutoff, keep_mask,
                                     per_class_quantile_cutoffs, regression_losses,
                                     relabel_classification, relabel_regression)

__all__ = ["classification_losses", "global_quantile_cutoff", "keep_mask",
           "per_class_quantile_cutoffs", "regression_losses", "relabel_classification",
           "relabel_regression"]
