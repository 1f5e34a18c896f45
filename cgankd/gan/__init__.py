"""The conditional GAN stage: class-conditional BigGAN-style GAN and CcGAN for regression.

``train.train_cgan`` trains one and writes ``generator.pt``; ``generate`` loads it and samples.
"""
