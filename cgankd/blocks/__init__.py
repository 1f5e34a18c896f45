"""Building blocks shared by the net zoo and the method's own models (the DRE extractor, the ILI
regressor). A package apart from ``cgankd.nets`` on purpose: importing ``cgankd.nets.<x>`` runs
``cgankd/nets/__init__.py``, which registers every net family, so a block kept there would put
the whole zoo in the source hash of train_cgan and subsample (an edit of vgg.py would rerun the
GAN). Nothing here imports the zoo."""
