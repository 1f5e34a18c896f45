"""cgankd: knowledge distillation through cGAN-generated samples (cGAN-KD), as a pipeline.

The package holds models, losses, samplers and data code; the Snakemake workflow at the
repository root only wires its functions together. Nothing here imports Snakemake.
"""

__version__ = "0.1.0"
