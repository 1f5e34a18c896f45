"""cDR-RS density-ratio estimation in feature space: extractors, the DR model, its loss and fit."""

from cgankd.dre.fit import DEFAULTS as FIT_DEFAULTS
from cgankd.dre.fit import fit_density_ratio
from cgankd.dre.loss import penalised_softplus_loss
from cgankd.dre.models import (CLASS_DR_HIDDEN, REGRESSION_DR_HIDDEN, ClassFeatureExtractor,
                               ClassLabelCode, DRMLP, RegressionAutoencoder, autoencoder_loss)

__all__ = ["CLASS_DR_HIDDEN", "REGRESSION_DR_HIDDEN", "ClassFeatureExtractor", "ClassLabelCode",
           "DRMLP", "FIT_DEFAULTS", "RegressionAutoencoder", "autoencoder_loss",
           "fit_density_ratio", "penalised_softplus_loss"]
