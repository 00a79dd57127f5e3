"""Small zoo models: helloworld, fully connected nets (dnn_2, dnn_4), LeNet and a CIFAR-sized AlexNet."""

from __future__ import annotations

from torch import nn

from prunekit.models.layers import SpatialTracker, conv_bn_relu
from prunekit.models.registry import register_model


@register_model("helloworld")
def helloworld(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), width: int = 16) -> nn.Module:
    """A tiny conv net (two conv-BN-ReLU blocks, global pooling, one linear layer) for smoke tests."""
    t = SpatialTracker(input_size)
    return nn.Sequential(
        conv_bn_relu(in_channels, width),
        t.pool(),
        conv_bn_relu(width, 2 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


def _dnn(depth: int, num_classes: int, in_channels: int, input_size, hidden: int) -> nn.Module:
    features = in_channels * input_size[0] * input_size[1]
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(depth - 1):
        layers += [nn.Linear(features, hidden), nn.ReLU(inplace=True)]
        features = hidden
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


@register_model("dnn_2")
def dnn_2(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), hidden: int = 256) -> nn.Module:
    """Fully connected net with 2 linear layers (one hidden layer of ``hidden`` neurons)."""
    return _dnn(2, num_classes, in_channels, input_size, hidden)


@register_model("dnn_4")
def dnn_4(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), hidden: int = 256) -> nn.Module:
    """Fully connected net with 4 linear layers (three hidden layers of ``hidden`` neurons)."""
    return _dnn(4, num_classes, in_channels, input_size, hidden)


@register_model("lenet")
def lenet(num_classes: int = 10, in_channels: int = 1, input_size=(28, 28)) -> nn.Module:
    """LeNet-5 with 'same' 5x5 convolutions (6 and 16 filters) and 120-84 fully connected layers.

    Padding keeps it valid on inputs as small as 8x8; the flatten feeds the first linear layer.
    """
    t = SpatialTracker(input_size)
    conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
    pool1 = t.pool()
    conv2 = nn.Conv2d(6, 16, 5, padding=2)
    pool2 = t.pool()
    return nn.Sequential(
        conv1, nn.ReLU(inplace=True), pool1,
        conv2, nn.ReLU(inplace=True), pool2,
        nn.Flatten(),
        nn.Linear(16 * t.h * t.w, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )


@register_model("alexnet")
def alexnet(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), hidden: int = 1024) -> nn.Module:
    """AlexNet sized for 28-32 px inputs: five convolutions (64-192-384-256-256), three pools, 3 FC layers."""
    t = SpatialTracker(input_size)
    features = nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1), nn.ReLU(inplace=True), t.pool(),
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), t.pool(),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), t.pool(),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(256 * t.h * t.w, hidden), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )
    return nn.Sequential(features, nn.Flatten(), classifier)
