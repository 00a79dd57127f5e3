"""Small building blocks shared by the zoo models."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU with 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PooledClassifier(nn.Module):
    """A ``features`` stack, global average pooling, then one linear ``classifier`` (VGG, MobileNets)."""

    def __init__(self, features: nn.Sequential, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        """Features, global average pool, classifier."""
        return self.classifier(self.pool(self.features(x)).flatten(1))


class SpatialTracker:
    """Follows the feature map size while a model is built, so pools and strides adapt to small inputs.

    A 2x downsampling is applied only while the map is at least 2 pixels on its smaller side,
    which lets every zoo model run on 8x8 digits as well as 32x32 CIFAR.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.h, self.w = size

    def can_halve(self) -> bool:
        """Whether a 2x downsampling still leaves at least 1 pixel."""
        return min(self.h, self.w) >= 2

    def halve(self) -> None:
        """Record a 2x downsampling (floor, as MaxPool2d(2) does)."""
        self.h, self.w = self.h // 2, self.w // 2

    def stride(self, wanted: int) -> int:
        """``wanted`` (1 or 2) if the map can take it, else 1; records the result."""
        if wanted == 2 and self.can_halve():
            # a 3x3 conv with padding 1 and stride 2 gives ceil(n / 2)
            self.h, self.w = (self.h + 1) // 2, (self.w + 1) // 2
            return 2
        return 1

    def pool(self) -> nn.Module:
        """``MaxPool2d(2)`` if the map can take it, else identity."""
        if self.can_halve():
            self.halve()
            return nn.MaxPool2d(2)
        return nn.Identity()


def init_weights(model: nn.Module) -> nn.Module:
    """He (Kaiming) initialisation for ReLU nets: convs fan-out normal, linears fan-in uniform, BN 1/0.

    PyTorch's default initialisation trains these small nets markedly slower.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
