"""What the fake-data stages (``cgankd.stages.fit_dre``, ``subsample``) share: the generator as a
source of fakes (``source``) and the DRE extractor's heads (``heads``)."""
