"""The networks of the GPM-family papers (docs/methods.md, "The protocol shared by the GPM
family"), all without biases.

BatchNorm layers default to `track_running_stats=False`, as in the reference models: batch
statistics are used at test time too. `track_running_stats=True` is the documented alternative.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


class AlexNet5(nn.Module):
    """AlexNet-5 backbone for 3 x 32 x 32 inputs: three convs (64, 128, 256) and two 2048 fc layers.

    Spatial sizes 32 -> 29 -> 14 -> 12 -> 6 -> 5 -> 2; the flattened conv output has 1024 entries.
    """

    feature_dim = 2048

    def __init__(self, in_channels: int = 3, track_running_stats: bool = False) -> None:
        super().__init__()
        stats = {"track_running_stats": track_running_stats}
        self.conv1 = nn.Conv2d(in_channels, 64, 4, bias=False)
        self.bn1 = nn.BatchNorm2d(64, **stats)
        self.conv2 = nn.Conv2d(64, 128, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(128, **stats)
        self.conv3 = nn.Conv2d(128, 256, 2, bias=False)
        self.bn3 = nn.BatchNorm2d(256, **stats)
        self.fc1 = nn.Linear(1024, 2048, bias=False)
        self.bn4 = nn.BatchNorm1d(2048, **stats)
        self.fc2 = nn.Linear(2048, 2048, bias=False)
        self.bn5 = nn.BatchNorm1d(2048, **stats)
        self.drop_conv = nn.Dropout(0.2)
        self.drop = nn.Dropout(0.5)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.drop_conv(F.relu(self.bn1(self.conv1(x)))))
        x = self.pool(self.drop_conv(F.relu(self.bn2(self.conv2(x)))))
        x = self.pool(self.drop(F.relu(self.bn3(self.conv3(x)))))
        x = self.drop(F.relu(self.bn4(self.fc1(x.flatten(1)))))
        return self.drop(F.relu(self.bn5(self.fc2(x))))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 conv + BN shortcut (named `shortcut.0`) where the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, track_running_stats: bool) -> None:
        super().__init__()
        stats = {"track_running_stats": track_running_stats}
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, **stats)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, **stats)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, **stats),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ReducedResNet18(nn.Module):
    """Reduced ResNet-18 (nf=20): 3x3 stem, blocks [2, 2, 2, 2] of widths nf x (1, 2, 4, 8) with
    strides 1/2/2/2, then avg_pool2d(2) and flatten. 20 conv weights in all."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        nf: int = 20,
        stem_stride: int = 1,
        track_running_stats: bool = False,
    ) -> None:
        super().__init__()
        stats = {"track_running_stats": track_running_stats}
        self.conv1 = nn.Conv2d(input_shape[0], nf, 3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(nf, **stats)
        stages, in_planes = [], nf
        for width, stride in zip((1, 2, 4, 8), (1, 2, 2, 2), strict=True):
            blocks = []
            for block_stride in (stride, 1):
                blocks.append(BasicBlock(in_planes, nf * width, block_stride, track_running_stats))
                in_planes = nf * width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        side = input_shape[1]
        for stride in (stem_stride, 1, 2, 2, 2):
            side = math.ceil(side / stride)
        self.feature_dim = in_planes * (side // 2) ** 2

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return F.avg_pool2d(out, 2).flatten(1)


class MLP(nn.Module):
    """Fully connected ReLU network without biases (GPM's PMNIST MLP is 784-100-100)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (100, 100)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width, bias=False), nn.ReLU()]
            in_features = width
        self.net = nn.Sequential(*layers)
        self.feature_dim = in_features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """A small conv net for 8x8 and 28x28 inputs: two conv-BN-ReLU-maxpool stages (32, 64) and one
    128-unit fc-BN-ReLU layer, no biases: AlexNet-5's layer types at a fraction of the cost."""

    feature_dim = 128

    def __init__(self, input_shape: tuple[int, ...], track_running_stats: bool = False) -> None:
        super().__init__()
        stats = {"track_running_stats": track_running_stats}
        self.conv1 = nn.Conv2d(input_shape[0], 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32, **stats)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, **stats)
        side = input_shape[1] // 2 // 2
        self.fc1 = nn.Linear(64 * side * side, 128, bias=False)
        self.bn3 = nn.BatchNorm1d(128, **stats)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        return F.relu(self.bn3(self.fc1(x.flatten(1))))
