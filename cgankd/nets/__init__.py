"""The net zoo: teachers and students for classification (K logits) or regression (1 output).

``build_net(name, num_outputs, in_channels, **options)`` makes any registered net; every net
takes ``forward(x, return_features=False)`` and has ``embed_dim`` and ``num_outputs``.
Importing the family modules below registers their nets.
"""

from cgankd.nets import (cifar_resnet, densenet, imagenet_resnet, mobilenetv2,  # noqa: F401
                         shufflenet, small_cnn, vgg, wrn)
from cgankd.nets.zoo import NETS, build_net, net_names

__all__ = ["NETS", "build_net", "net_names"]
