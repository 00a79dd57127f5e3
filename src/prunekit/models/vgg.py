"""VGG-11/13/16/19 with BatchNorm, sized for 28-32 px inputs (the CIFAR variant: one linear classifier)."""

from __future__ import annotations

from torch import nn

from prunekit.models.layers import PooledClassifier, SpatialTracker, conv_bn_relu
from prunekit.models.registry import register_model

_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(PooledClassifier):
    """Conv-BN-ReLU stacks with max pools (skipped once the map is 1 px), global pooling, one classifier."""

    def __init__(self, config: list, num_classes: int, in_channels: int, input_size, width_mult: float = 1.0) -> None:
        t = SpatialTracker(input_size)
        layers: list[nn.Module] = []
        cin = in_channels
        for item in config:
            if item == "M":
                layers.append(t.pool())
            else:
                cout = max(1, int(round(item * width_mult)))
                layers.append(conv_bn_relu(cin, cout))
                cin = cout
        super().__init__(nn.Sequential(*layers), cin, num_classes)


def _make(name: str):
    def factory(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), width_mult: float = 1.0) -> nn.Module:
        return VGG(_CONFIGS[name], num_classes, in_channels, input_size, width_mult)

    factory.__name__ = name
    factory.__doc__ = f"{name.upper()} with BatchNorm for small images; ``width_mult`` scales every layer."
    return register_model(name)(factory)


vgg11 = _make("vgg11")
vgg13 = _make("vgg13")
vgg16 = _make("vgg16")
vgg19 = _make("vgg19")
