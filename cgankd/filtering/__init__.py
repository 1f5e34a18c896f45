"""Teacher filtering and label replacement of generated samples."""

from cgankd.filtering.filter import (class_quotas, classification_losses, global_quantile_cutoff,
                                     keep_mask, per_class_quantile_cutoffs, per_class_selection,
                                     regression_losses, relabel_classification,
                                     relabel_regression, select_rows, teacher_scores)

__all__ = ["class_quotas", "classification_losses", "global_quantile_cutoff", "keep_mask",
           "per_class_quantile_cutoffs", "per_class_selection", "regression_losses",
           "relabel_classification", "relabel_regression", "select_rows",
           "teacher_scores"]
