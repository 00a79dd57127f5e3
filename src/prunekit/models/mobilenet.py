"""MobileNet v1 and v2 sized for small images (stride 1 stem, as in the usual CIFAR variants)."""

from __future__ import annotations

from torch import nn

from prunekit.models.layers import PooledClassifier, SpatialTracker, conv_bn_relu
from prunekit.models.registry import register_model

# (out channels, stride) of each depthwise-separable block
_V1 = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def _c(ch: int, mult: float) -> int:
    return max(8, int(round(ch * mult / 8)) * 8) if mult != 1.0 else ch


class MobileNetV1(PooledClassifier):
    """MobileNet v1: a 3x3 stem, then depthwise 3x3 + pointwise 1x1 blocks, global pooling, classifier."""

    def __init__(self, num_classes: int, in_channels: int, input_size, width_mult: float = 1.0) -> None:
        t = SpatialTracker(input_size)
        cin = _c(32, width_mult)
        layers: list[nn.Module] = [conv_bn_relu(in_channels, cin)]
        for cout, stride in _V1:
            cout = _c(cout, width_mult)
            layers.append(nn.Sequential(conv_bn_relu(cin, cin, 3, t.stride(stride), groups=cin), conv_bn_relu(cin, cout, 1)))
            cin = cout
        super().__init__(nn.Sequential(*layers), cin, num_classes)


class InvertedResidual(nn.Module):
    """MobileNet v2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu6(cin, hidden, 1))
        layers += [
            conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        """x + block(x) where shapes allow, else block(x)."""
        out = self.conv(x)
        return x + out if self.use_residual else out


def conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU6 with 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


# (expansion, out channels, repeats, first stride); CIFAR variant: the stem and the 2nd stage keep stride 1
_V2 = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(PooledClassifier):
    """MobileNet v2 for small images: stride-1 stem and the CIFAR stride pattern (32 px -> 4 px)."""

    def __init__(self, num_classes: int, in_channels: int, input_size, width_mult: float = 1.0) -> None:
        t = SpatialTracker(input_size)
        cin = _c(32, width_mult)
        layers: list[nn.Module] = [conv_bn_relu6(in_channels, cin)]
        for expand, cout, repeats, stride in _V2:
            cout = _c(cout, width_mult)
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, t.stride(stride) if i == 0 else 1, expand))
                cin = cout
        last = _c(1280, width_mult) if width_mult > 1.0 else 1280
        layers.append(conv_bn_relu6(cin, last, 1))
        super().__init__(nn.Sequential(*layers), last, num_classes)


@register_model("mobilenet_v1")
def mobilenet_v1(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), width_mult: float = 1.0) -> nn.Module:
    """MobileNet v1 for small images; ``width_mult`` scales every layer (rounded to multiples of 8)."""
    return MobileNetV1(num_classes, in_channels, input_size, width_mult)


@register_model("mobilenet_v2")
def mobilenet_v2(num_classes: int = 10, in_channels: int = 3, input_size=(32, 32), width_mult: float = 1.0) -> nn.Module:
    """MobileNet v2 for small images; ``width_mult`` scales every layer (rounded to multiples of 8)."""
    return MobileNetV2(num_classes, in_channels, input_size, width_mult)
