"""The networks a run trains, wrapped as a :class:`ComposerClassifier`: :func:`build_model` builds them by name.

* ``resnet_20|32|44|56|110``: the CIFAR ResNet that Composer shipped until 0.18 (:func:`resnet_cifar`);
* ``torchvision/<name>``: any torchvision classification model (``torchvision/resnet18``,
  ``torchvision/mobilenet_v3_small``, ...), built by ``torchvision.models.get_model`` (:func:`torchvision_classifier`),
  optionally with torchvision's pretrained ImageNet weights.

Inputs are images in ``[0, 1]`` (N, C, H, W), C = 3 unless the data set says otherwise (Fashion-MNIST: 1, with
``channels``); per-channel normalisation (the data set's statistics where it declares them, else CIFAR-100's for the
CIFAR ResNets and ImageNet's for torchvision models) is the network's first layer, so attacks work in pixel space and
a past run's checkpoint is a self-contained teacher.

A batch is ``(inputs, targets)`` or ``(inputs, targets, indices)``: the reuse algorithms key scores, caches and
provenance on each sample's dataset index, so the classifier accepts both forms.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from composer.models import ComposerClassifier
from torch import Tensor, nn

from recipes.core.errors import UsageError
from recipes.core.rules import Rule

__all__ = [
    'ModelName',
    'CIFAR100_MEAN',
    'CIFAR100_STD',
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'RESNET_DEPTHS',
    'TORCHVISION',
    'Stats',
    'CifarClassifier',
    'CifarResNet',
    'TorchvisionNet',
    'build_model',
    'check_model_name',
    'model_names',
    'resnet_cifar',
    'torchvision_classifier',
    'torchvision_names',
]

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet weights were trained with these
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION = 'torchvision/'  # model.name prefix of torchvision's classifiers
Stats = tuple[Sequence[float], Sequence[float]]  # a data set's per-channel (mean, std) of pixels in [0, 1]
RESNET_DEPTHS = {'resnet_20': 20, 'resnet_32': 32, 'resnet_44': 44, 'resnet_56': 56, 'resnet_110': 110}


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``; mean and std are buffers, so they travel with the checkpoint."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def _check_stats(channels: int, mean: Sequence[float], std: Sequence[float]) -> None:
    if channels < 1 or len(mean) != channels or len(std) != channels:
        raise ValueError(f'{channels} input channel(s) need one mean and one std each, got mean={tuple(mean)} std={tuple(std)}')


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
    """ResNet for 32x32 inputs (He et al. 2016, section 4.2): depth = 6n + 2; ``channels`` input channels, whose
    ``mean`` and ``std`` the first layer normalises with (one value per channel); ``width`` channels in the first
    stage, twice and four times that in the second and third (16: the paper's 16/32/64)."""

    def __init__(
        self,
        depth: int,
        num_classes: int,
        mean: Sequence[float] = CIFAR100_MEAN,
        std: Sequence[float] = CIFAR100_STD,
        channels: int = 3,
        width: int = 16,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f'CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}')
        _check_stats(channels, mean, std)
        if width < 1:
            raise ValueError(f'CIFAR ResNet width must be a positive number of channels, got {width}')
        n = (depth - 2) // 6
        self.normalize = Normalize(mean, std)
        self.conv = nn.Conv2d(channels, width, 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        blocks: list[nn.Module] = []
        in_planes = width
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
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


def resnet_cifar(
    name: str, num_classes: int, channels: int = 3, stats: Stats | None = None, width: int = 16,
) -> CifarClassifier:
    """Build ``resnet_20|32|44|56|110`` for ``num_classes`` classes and ``channels`` input channels as a Composer
    model, normalising with ``stats`` (``(mean, std)``; None: CIFAR-100's), its stages ``width``, 2x and 4x wide."""
    if name not in RESNET_DEPTHS:
        raise ValueError(f'unknown model {name!r}: choose one of {", ".join(RESNET_DEPTHS)}')
    if num_classes < 2:
        raise ValueError(f'num_classes must be at least 2, got {num_classes}')
    mean, std = stats or (CIFAR100_MEAN, CIFAR100_STD)
    net = CifarResNet(RESNET_DEPTHS[name], num_classes, mean, std, channels, width)
    return CifarClassifier(net, num_classes=num_classes)


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    """The classification models of ``torchvision.models`` (not detection, segmentation, video or optical flow)."""
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def model_names() -> list[str]:
    """Every ``model.name``: the CIFAR ResNets, then ``torchvision/<name>`` for each torchvision classifier."""
    return [*RESNET_DEPTHS, *(TORCHVISION + n for n in torchvision_names())]


def check_model_name(name: str, key: str = 'model.name') -> None:
    """Refuse an unknown model name in one line, naming the closest valid names."""
    if not isinstance(name, str):
        raise UsageError(f'{key}={name!r} must be a name such as resnet_56 or torchvision/resnet18')
    if name in RESNET_DEPTHS or (name.startswith(TORCHVISION) and name[len(TORCHVISION):] in torchvision_names()):
        return
    close = difflib.get_close_matches(name, model_names(), n=3, cutoff=0.5)
    if not name.startswith(TORCHVISION):  # a bare torchvision name: the user forgot the prefix
        close = [TORCHVISION + name] if name in torchvision_names() else close
    hint = f' (did you mean {close[0]!r}?)' if close else ''
    others = f'also close: {", ".join(close[1:])}; ' if len(close) > 1 else ''
    raise UsageError(
        f'{key}={name!r} is unknown{hint}: {others}use one of {", ".join(RESNET_DEPTHS)} or torchvision/<name> for a '
        'torchvision classifier (torchvision.models.list_models(module=torchvision.models) lists them)',
    )


class TorchvisionNet(nn.Module):
    """``normalize`` (ImageNet mean and std) followed by a torchvision classifier ``net``: inputs in ``[0, 1]``."""

    def __init__(self, net: nn.Module, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))


def _replace_head(net: nn.Module, num_classes: int, name: str) -> None:
    """Swap the last ``nn.Linear`` of ``net`` (its classifier head) for a fresh one with ``num_classes`` outputs."""
    heads = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise UsageError(
            f'model.pretrained=true: torchvision/{name} has no linear classifier head to replace for {num_classes} '
            'classes: train it from scratch (model.pretrained=false) or use 1000 classes',
        )
    path, old = heads[-1]
    parent = net.get_submodule(path.rpartition('.')[0]) if '.' in path else net
    setattr(parent, path.rpartition('.')[2], nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def _set_input_channels(net: nn.Module, channels: int, name: str) -> None:
    """Give the first convolution of ``net`` ``channels`` inputs; pretrained RGB kernels are summed over their inputs
    (a grey image through the summed kernel gives what the RGB kernel gives the same image in three channels)."""
    first = next(((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or first[1].groups != 1:
        raise UsageError(f'torchvision/{name} has no plain first convolution to take {channels} input channel(s): '
                         'use a CIFAR ResNet (resnet_20 ...) or 3-channel data')
    path, old = first
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                    bias=old.bias is not None, padding_mode=old.padding_mode)
    with torch.no_grad():
        if channels == 1:
            new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    parent = net.get_submodule(path.rpartition('.')[0]) if '.' in path else net
    setattr(parent, path.rpartition('.')[2], new)


def torchvision_classifier(
    name: str, num_classes: int, pretrained: bool = False, channels: int = 3, stats: Stats | None = None,
) -> CifarClassifier:
    """torchvision's classifier ``name`` (without the ``torchvision/`` prefix) for ``num_classes`` classes.

    ``pretrained`` loads torchvision's default ImageNet weights (from ``$TORCH_HOME/hub/checkpoints`` or the
    internet) and, for another number of classes than theirs, gives the model a fresh last linear layer. Another
    number of input ``channels`` than 3 replaces the first convolution (:func:`_set_input_channels`); ``stats``
    (``(mean, std)``; None: ImageNet's) normalise the inputs.
    """
    import torchvision

    check_model_name(TORCHVISION + name)
    if num_classes < 2:
        raise ValueError(f'num_classes must be at least 2, got {num_classes}')
    mean, std = stats or (IMAGENET_MEAN, IMAGENET_STD)
    _check_stats(channels, mean, std)
    extra = {'aux_logits': False} if name in ('googlenet', 'inception_v3') else {}  # one output in training too
    if not pretrained:
        net = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)
        if channels != 3:
            _set_input_channels(net, channels, name)
        return CifarClassifier(TorchvisionNet(net, mean, std), num_classes=num_classes)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        net = torchvision.models.get_model(name, weights=weights, **extra)
    except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError; a truncated download a RuntimeError
        raise UsageError(
            f'model.pretrained=true: the weights of torchvision/{name} ({weights.url}) could not be loaded '
            f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else "no detail"}): put the file in '
            '$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints) or set model.pretrained=false',
        ) from None
    if len(weights.meta.get('categories') or ()) != num_classes:
        _replace_head(net, num_classes, name)
    if channels != 3:
        _set_input_channels(net, channels, name)
    return CifarClassifier(TorchvisionNet(net, mean, std), num_classes=num_classes)


def build_model(
    name: str, num_classes: int, pretrained: bool = False, channels: int = 3, stats: Stats | None = None,
    width: int | None = None,
) -> CifarClassifier:
    """The Composer model ``model.name`` names: a CIFAR ResNet or ``torchvision/<name>``, for images of ``channels``
    channels normalised with ``stats`` (``(mean, std)``; None: the family's own, CIFAR-100's or ImageNet's). A run
    passes its data set's (:func:`recipes.core.data.data_channels`, :func:`recipes.core.data.data_stats`). ``width``
    (``model.width``) is a CIFAR ResNet's first-stage width (None: 16)."""
    if width is not None and name.startswith(TORCHVISION):
        raise UsageError(f'model.width={width} sets a CIFAR ResNet\'s width: {name} has its own; set model.width=null')
    if name.startswith(TORCHVISION):
        return torchvision_classifier(name[len(TORCHVISION):], num_classes, pretrained, channels, stats)
    if pretrained:
        raise UsageError(f'model.pretrained=true needs a torchvision model (torchvision/<name>): {name} has no pretrained weights; set model.pretrained=false')
    if name not in RESNET_DEPTHS:
        check_model_name(name)
    return resnet_cifar(name, num_classes, channels, stats, 16 if width is None else width)


@dataclass(frozen=True)
class ModelName(Rule):
    """A CIFAR ResNet or ``torchvision/<name>``; an unknown name is refused naming the closest valid ones."""

    def check(self, key: str, value: Any, cfg: Any = None) -> Any:
        check_model_name(value, key)
        return value

    def describe(self) -> str:
        return '`resnet_20|32|44|56|110` or `torchvision/<name>`'

    def invalid_example(self) -> Any:
        return 'resnet_21'
