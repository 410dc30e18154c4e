"""The CIFAR ResNet that Composer shipped until 0.18, wrapped as a :class:`ComposerClassifier`.

Inputs are images in ``[0, 1]`` (N, 3, 32, 32); per-channel normalisation is the network's first layer, so
attacks work in pixel space and a past run's checkpoint is a self-contained teacher.

A batch is ``(inputs, targets)`` or ``(inputs, targets, indices)``: the reuse algorithms key scores, caches and
provenance on each sample's dataset index, so the classifier accepts both forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from composer.models import ComposerClassifier
from torch import Tensor, nn

__all__ = ['CIFAR100_MEAN', 'CIFAR100_STD', 'RESNET_DEPTHS', 'CifarClassifier', 'CifarResNet', 'resnet_cifar']

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
RESNET_DEPTHS = {'resnet_20': 20, 'resnet_32': 32, 'resnet_44': 44, 'resnet_56': 56, 'resnet_110': 110}


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``; mean and std are buffers, so they travel with the checkpoint."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs (He et al. 2016, section 4.2): depth = 6n + 2."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        mean: Sequence[float] = CIFAR100_MEAN,
        std: Sequence[float] = CIFAR100_STD,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f'CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}')
        n = (depth - 2) // 6
        self.normalize = Normalize(mean, std)
        self.conv = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        blocks: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64)):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn(self.conv(self.normalize(x))))
        out = self.pool(self.blocks(out))
        return self.fc(torch.flatten(out, 1))


class CifarClassifier(ComposerClassifier):
    """A ComposerClassifier whose batches may carry sample indices as a third item."""

    def forward(self, batch: Any) -> Tensor:
        return self.module(batch[0])

    def loss(self, outputs: Tensor, batch: Any, *args: Any, **kwargs: Any) -> Tensor:
        return self._loss_fn(outputs, batch[1], *args, **kwargs)

    def update_metric(self, batch: Any, outputs: Any, metric: Any) -> None:
        metric.update(outputs, batch[1])


def resnet_cifar(name: str, num_classes: int) -> CifarClassifier:
    """Build ``resnet_20|32|44|56|110`` for ``num_classes`` classes as a Composer model."""
    if name not in RESNET_DEPTHS:
        raise ValueError(f'unknown model {name!r}: choose one of {", ".join(RESNET_DEPTHS)}')
    if num_classes < 2:
        raise ValueError(f'num_classes must be at least 2, got {num_classes}')
    return CifarClassifier(CifarResNet(RESNET_DEPTHS[name], num_classes), num_classes=num_classes)
