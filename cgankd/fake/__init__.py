"""The fake-data stages: density ratios (fit_dre), subsampling, filtering and relabelling."""
