"""Model growth: start a larger network from a smaller trained one (Net2Net, Chen, Goodfellow & Shlens, ICLR 2016).

Functional forms: :func:`grow_depth` (Net2DeeperNet for residual networks: the past blocks first in each stage, the
new blocks either the identity or a copy of the stage's last trained block, progressive stacking) and
:func:`grow_width` (Net2WiderNet for the CIFAR ResNets' ``width``). Algorithm: :class:`GrowFromPastRun`, which grows
a past run's checkpoint into the student at ``INIT`` and lets the run train its own schedule from step 0.

Families: the CIFAR ResNets (:class:`recipes.core.model.CifarResNet`) and torchvision's ResNets
(``torchvision.models.ResNet``: BasicBlock or Bottleneck), bare or inside their wrappers (a Composer model's
``module``, :class:`recipes.core.model.TorchvisionNet`). Each block of both ends ``relu(last_bn(...) + shortcut(x))``
and takes a ReLU output as input, so a block whose last BatchNorm has scale and shift 0 returns its input exactly, in
evaluation and in training mode (batch statistics or running ones, the branch is multiplied by 0).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated

import torch
from composer.core import Event, State
from composer.loggers import Logger
from torch import Tensor, nn

from algorithms.past_run import PastRun
from algorithms.warm_start.warm_start import NumClasses, Strict, WarmStart
from recipes.core.artifacts import CheckpointNames, PastRunFolder
from recipes.core.declare import FromRun, checked
from recipes.core.errors import UsageError
from recipes.core.model import CifarResNet
from recipes.core.rules import Number, OneOf

__all__ = ['DEPTH_METHODS', 'GrowFromPastRun', 'grow', 'grow_depth', 'grow_width']

DEPTH_METHODS = {
    'identity': 'new blocks start as the identity (their last BatchNorm at scale 0, shift 0): the past function, exactly',
    'copy': 'new blocks copy their stage\'s last trained block (progressive stacking): not function-preserving',
}


@dataclass(frozen=True)
class _Layout:
    """Where a residual network's blocks are: ``stages[s][i]`` is the state-dict prefix of block ``i`` of stage ``s``
    (``blocks.7.``, ``net.layer2.0.``); ``family`` names it in messages; ``core`` is the ResNet module itself."""

    family: str
    stages: list[list[str]]
    last_bn: str  # the residual branch's last BatchNorm inside a block: bn2 (basic blocks) or bn3 (bottlenecks)
    core: nn.Module
    core_prefix: str


def _network(model: nn.Module) -> nn.Module:
    """The bare network of a Composer model (its ``module``), else ``model``."""
    from composer.models import ComposerModel

    return model.module if isinstance(model, ComposerModel) else model


def _layout(net: nn.Module, what: str) -> _Layout:
    """The block layout of a CIFAR ResNet or torchvision ResNet found in ``net`` (itself or a submodule)."""
    from torchvision.models import ResNet
    from torchvision.models.resnet import Bottleneck

    for path, module in net.named_modules():
        prefix = f'{path}.' if path else ''
        if isinstance(module, CifarResNet):
            blocks = len(module.blocks)
            n = blocks // 3
            stages = [[f'{prefix}blocks.{s * n + i}.' for i in range(n)] for s in range(3)]
            return _Layout('CIFAR ResNet', stages, 'bn2', module, prefix)
        if isinstance(module, ResNet):
            layers = [getattr(module, f'layer{s}') for s in range(1, 5)]
            stages = [[f'{prefix}layer{s + 1}.{i}.' for i in range(len(layer))] for s, layer in enumerate(layers)]
            bottleneck = isinstance(layers[0][0], Bottleneck)
            family = f'torchvision ResNet ({"Bottleneck" if bottleneck else "BasicBlock"})'
            return _Layout(family, stages, 'bn3' if bottleneck else 'bn2', module, prefix)
    raise UsageError(
        f'{what} ({type(net).__name__}) is not a residual network growth knows: grow a CIFAR ResNet (resnet_20 ...) or '
        'a torchvision ResNet (torchvision/resnet18 ...)',
    )


def _pair(past: nn.Module, fresh: nn.Module) -> tuple[nn.Module, nn.Module, _Layout, _Layout]:
    past_net, fresh_net = _network(past), _network(fresh)
    a, b = _layout(past_net, 'the past model'), _layout(fresh_net, 'the new model')
    if type(past_net) is not type(fresh_net) or a.family != b.family or a.core_prefix != b.core_prefix:
        raise UsageError(
            f'cannot grow a {a.family} ({type(past_net).__name__}) into a {b.family} ({type(fresh_net).__name__}): '
            'growth keeps the family; use past_run_distillation, whose teacher may differ',
        )
    return past_net, fresh_net, a, b


def _shape_check(past: dict[str, Tensor], grown: dict[str, Tensor], pairs: dict[str, str], how: str) -> None:
    """Refuse in one line the first entry whose source in the past model is missing or of another shape."""
    for key, source in pairs.items():
        if source not in past:
            raise UsageError(f'cannot grow: the past model has no {source!r} for the new model\'s {key!r} ({how})')
        if past[source].shape != grown[key].shape:
            raise UsageError(
                f'cannot grow: another width (first mismatch: {key!r} is {tuple(grown[key].shape)} in the new model, '
                f'{tuple(past[source].shape)} in the past one); grow_depth keeps the width: grow the width first '
                '(grow_width, CIFAR ResNets)',
            )


def grow_depth(past: nn.Module, fresh: nn.Module, method: str = 'identity') -> nn.Module:
    """A copy of ``fresh``, a deeper network of ``past``'s family and width, holding ``past``'s function.

    The stem, the head and the first ``len(past stage)`` blocks of each stage take ``past``'s parameters and
    BatchNorm statistics; each further block is, by ``method``:

    * ``identity``: ``fresh``'s own initialisation with the residual branch's last BatchNorm at scale 0 and shift 0,
      so the block returns its (non-negative) input and the grown network computes ``past``'s logits exactly, in
      ``eval()`` and ``train()`` mode (Net2DeeperNet);
    * ``copy``: a copy of the stage's last trained block, parameters and statistics (progressive stacking, Gong et
      al. 2019): not function-preserving.

    ``past`` and ``fresh`` are left unchanged. Another family, a stage with fewer blocks than ``past``'s, or another
    width is refused in one line naming the first mismatch. Both may be Composer models or bare networks.
    """
    if method not in DEPTH_METHODS:
        raise UsageError(f'method={method!r} is unknown: choose one of {", ".join(DEPTH_METHODS)}')
    past_net, _, a, b = _pair(past, fresh)
    if len(a.stages) != len(b.stages):
        raise UsageError(f'cannot grow: the past model has {len(a.stages)} stages, the new one {len(b.stages)}')
    for s, (old, new) in enumerate(zip(a.stages, b.stages, strict=True)):
        if len(new) < len(old):
            raise UsageError(
                f'cannot grow: stage {s + 1} of the new model has fewer blocks ({len(new)}) than the past model\'s '
                f'({len(old)}): growth only adds blocks; use past_run_distillation to shrink',
            )
    grown = copy.deepcopy(fresh)
    grown_net = _network(grown)
    past_state, grown_state = past_net.state_dict(), grown_net.state_dict()

    block_of: dict[str, tuple[int, int]] = {p: (s, i) for s, stage in enumerate(b.stages) for i, p in enumerate(stage)}
    pairs: dict[str, str] = {}  # new model's key -> past model's key it takes
    zeroed: list[str] = []  # the identity blocks' last BatchNorm scale and shift
    for key in grown_state:
        prefix = next((p for p in block_of if key.startswith(p)), None)
        if prefix is None:
            pairs[key] = key
            continue
        s, i = block_of[prefix]
        rest = key[len(prefix):]
        if i < len(a.stages[s]):
            pairs[key] = a.stages[s][i] + rest
        elif method == 'copy':
            pairs[key] = a.stages[s][-1] + rest
        elif rest in (f'{b.last_bn}.weight', f'{b.last_bn}.bias'):
            zeroed.append(key)
    _shape_check(past_state, grown_state, pairs, f'method={method}')
    for s, stage in enumerate(b.stages):  # identity blocks must not change the shape: no downsampling shortcut
        for prefix in stage[len(a.stages[s]):]:
            if method == 'identity' and any(k.startswith(prefix) and ('shortcut' in k or 'downsample' in k)
                                            for k in grown_state):
                raise UsageError(f'cannot grow: new block {prefix.rstrip(".")} changes its input\'s shape (it has '
                                 'a projection shortcut), so it cannot start as the identity')
    with torch.no_grad():
        for key, source in pairs.items():
            grown_state[key].copy_(past_state[source])
        for key in zeroed:
            grown_state[key].zero_()
    return grown


# ----- width ----------------------------------------------------------------------------------------------------


def _cifar_core(model: nn.Module, what: str) -> CifarResNet:
    layout = _layout(_network(model), what)
    if not isinstance(layout.core, CifarResNet):
        raise UsageError(f'grow_width widens CIFAR ResNets (model.width): {what} is a {layout.family}')
    return layout.core


def _mapping(old: int, new: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Net2WiderNet's random mapping ``g`` for ``old`` units widened to ``new``: ``g(j) = j`` for the old units, a
    uniformly drawn old unit for each new one; and, for each old unit, how many units copy it (itself included)."""
    extra = torch.randint(0, old, (new - old,), generator=generator)
    g = torch.cat([torch.arange(old), extra])
    return g, torch.bincount(g, minlength=old).to(torch.float32)


def grow_width(past: nn.Module, fresh: nn.Module, noise: float = 0.0, seed: int = 0) -> nn.Module:
    """A copy of ``fresh``, a CIFAR ResNet of ``past``'s depth with wider (or equal) stages, holding ``past``'s function.

    Net2WiderNet, per layer: each new channel of a convolution's output copies a randomly drawn old one (its
    kernels, its BatchNorm scale, shift and running statistics), and the next layer's weights for the copies of a
    channel are that channel's weights divided by the number of copies. The residual stream of each stage has one
    mapping (the stem, every block's second BatchNorm and projection shortcut write it, identity shortcuts carry it);
    each block's inner channels have their own. With ``noise > 0``, the new channels' incoming weights get Gaussian
    noise of ``noise`` times the layer's standard deviation, to break the copies' symmetry (no longer exact).
    ``seed`` draws the mappings and the noise. At ``noise=0`` the logits equal ``past``'s up to float rounding, in
    ``eval()`` and ``train()`` mode (copies have equal batch statistics). ``past`` and ``fresh`` are left unchanged.
    """
    if not noise >= 0:
        raise UsageError(f'noise={noise!r} must be a number >= 0 (0: function-preserving)')
    old = _cifar_core(past, 'the past model')
    grown = copy.deepcopy(fresh)
    new = _cifar_core(grown, 'the new model')
    if len(old.blocks) != len(new.blocks):
        raise UsageError(f'cannot widen: the past model has {len(old.blocks)} blocks, the new one {len(new.blocks)}: '
                         'grow_width keeps the depth (grow_depth adds blocks)')
    if old.conv.in_channels != new.conv.in_channels or old.fc.out_features != new.fc.out_features:
        raise UsageError(f'cannot widen: the past model takes {old.conv.in_channels} input channels to '
                         f'{old.fc.out_features} classes, the new one {new.conv.in_channels} to {new.fc.out_features}')
    if new.conv.out_channels < old.conv.out_channels:
        raise UsageError(f'cannot widen: the new model is narrower (width {new.conv.out_channels}) than the past '
                         f'one ({old.conv.out_channels}): growth only adds channels')
    generator = torch.Generator().manual_seed(int(seed))
    src = old.state_dict()
    dst = new.state_dict()

    def channels(module_prefix: str, mapping: Tensor) -> None:  # a BatchNorm's per-channel entries, copied by mapping
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            dst[f'{module_prefix}.{name}'].copy_(src[f'{module_prefix}.{name}'][mapping])
        dst[f'{module_prefix}.num_batches_tracked'].copy_(src[f'{module_prefix}.num_batches_tracked'])

    def weights(key: str, rows: Tensor | None, cols: tuple[Tensor, Tensor] | None, n_old_rows: int) -> None:
        w = src[key]
        if cols is not None:
            w = w[:, cols[0]] / cols[1][cols[0]].view(1, -1, *([1] * (w.dim() - 2)))
        if rows is not None:
            w = w[rows]
        if noise > 0 and w.shape[0] > n_old_rows:
            scale = float(noise) * float(src[key].std())
            w = w.clone()
            w[n_old_rows:] += scale * torch.randn(w[n_old_rows:].shape, generator=generator)
        dst[key].copy_(w)

    with torch.no_grad():
        dst['normalize.mean'].copy_(src['normalize.mean'])
        dst['normalize.std'].copy_(src['normalize.std'])
        stream, counts = _mapping(old.conv.out_channels, new.conv.out_channels, generator)
        weights('conv.weight', stream, None, old.conv.out_channels)
        channels('bn', stream)
        for i, (ob, nb) in enumerate(zip(old.blocks, new.blocks, strict=True)):
            p = f'blocks.{i}'
            if nb.conv2.out_channels < ob.conv2.out_channels:
                raise UsageError(f'cannot widen: {p} is narrower in the new model ({nb.conv2.out_channels}) than in '
                                 f'the past one ({ob.conv2.out_channels})')
            inner, inner_counts = _mapping(ob.conv1.out_channels, nb.conv1.out_channels, generator)
            if nb.conv2.out_channels != nb.conv1.in_channels:  # the first block of a wider stage: a new stream mapping
                out, out_counts = _mapping(ob.conv2.out_channels, nb.conv2.out_channels, generator)
            else:
                out, out_counts = stream, counts
            weights(f'{p}.conv1.weight', inner, (stream, counts), ob.conv1.out_channels)
            channels(f'{p}.bn1', inner)
            weights(f'{p}.conv2.weight', out, (inner, inner_counts), ob.conv2.out_channels)
            channels(f'{p}.bn2', out)
            if isinstance(nb.shortcut, nn.Sequential):
                weights(f'{p}.shortcut.0.weight', out, (stream, counts), ob.conv2.out_channels)
                channels(f'{p}.shortcut.1', out)
            stream, counts = out, out_counts
        weights('fc.weight', None, (stream, counts), old.fc.out_features)
        dst['fc.bias'].copy_(src['fc.bias'])
    return grown


def _cifar_width(model: nn.Module) -> int | None:
    net = _network(model)
    core = next((m for m in net.modules() if isinstance(m, CifarResNet)), None)
    return None if core is None else core.conv.out_channels


def grow(past: nn.Module, fresh: nn.Module, method: str = 'identity', noise: float = 0.0, seed: int = 0) -> nn.Module:
    """``fresh`` grown from ``past`` in width (:func:`grow_width`, CIFAR ResNets) and then in depth
    (:func:`grow_depth`): a wider past model is first widened at its own depth, then deepened."""
    past_width, fresh_width = _cifar_width(past), _cifar_width(fresh)
    if past_width is not None and fresh_width is not None and fresh_width != past_width:
        old = next(m for m in _network(past).modules() if isinstance(m, CifarResNet))
        new = next(m for m in _network(fresh).modules() if isinstance(m, CifarResNet))
        wide = CifarResNet(2 + 2 * len(old.blocks), old.fc.out_features, old.normalize.mean.flatten().tolist(),
                           old.normalize.std.flatten().tolist(), old.conv.in_channels, new.conv.out_channels)
        past = grow_width(old, wide, noise=noise, seed=seed)
        fresh_core = new
        grown = copy.deepcopy(fresh)
        core = next(m for m in _network(grown).modules() if isinstance(m, CifarResNet))
        core.load_state_dict(grow_depth(past, fresh_core, method).state_dict())
        return grown
    return grow_depth(past, fresh, method)


# ----- the algorithm --------------------------------------------------------------------------------------------

Run = Annotated[str | PastRun, PastRunFolder(), 'the past run folder: a CIFAR ResNet (or torchvision ResNet) no deeper '
                'and no wider than the model, with its classes']
Checkpoint = Annotated[str, CheckpointNames(), 'the checkpoint to grow from']
Method = Annotated[str, OneOf(*DEPTH_METHODS), 'new blocks: `identity` (exact: the past function) or `copy` of '
                   'the stage\'s last trained block (progressive stacking)']
Noise = Annotated[float, Number(0, 10, message='must be a number in [0, 10]: 0 keeps the function exactly'),
                  'width growth only: Gaussian noise on the new channels\' weights, times the layer\'s std']


@checked
class GrowFromPastRun(WarmStart):
    """Start a larger network from checkpoint ``checkpoint`` of the past run ``run``, grown by Net2Net.

    Events: ``INIT`` grows the past network (loaded through :meth:`PastRun.load`, ``weights_only``) into the
    student by :func:`grow` (wider first, :func:`grow_width`, then deeper, :func:`grow_depth` with ``method``) and
    copies the result into the student in place, so the optimizer built beside the model keeps its parameters; the
    run then trains its own schedule from step 0. A run resumed from its own checkpoint loads that checkpoint after
    ``INIT``, so resumption is exact. The past run's compute up to the checkpoint counts as reused, as for
    :class:`~algorithms.warm_start.WarmStart`, and a past run that also teaches (``past_run_distillation``) counts
    once. Another warm start in the same run is refused: both would set the start.
    """

    def __init__(
        self,
        run: Run,
        checkpoint: Checkpoint = 'latest',
        method: Method = 'identity',
        noise: Noise = 0.0,
        num_classes: NumClasses = None,
        strict: Strict = False,
        *,
        seed: Annotated[int | None, FromRun('seed')] = None,
    ) -> None:
        super().__init__(run, checkpoint, num_classes=num_classes, strict=strict)
        self.method = str(method)
        self.noise = float(noise)
        self.seed = int(seed or 0)

    def start_weights(self, student: nn.Module) -> nn.Module:
        return grow(self.past, student, self.method, self.noise, self.seed)

    def apply(self, event: Event, state: State, logger: Logger) -> None:
        others = [type(alg).__name__ for alg in state.algorithms if isinstance(alg, WarmStart) and alg is not self]
        if others:
            raise UsageError(f'{type(self).__name__} and {others[0]} both set the weights the run starts from: keep '
                             'one of them')
        student = state.model.module if hasattr(state.model, 'module') else state.model
        where = f'past run {self.past_run.folder} ({self.past_run.config["model"]["name"]})'
        try:
            start = self.start_weights(student)
        except UsageError as e:
            raise UsageError(f'grow_from_past_run: {where}: {e}') from None
        with torch.no_grad():
            for name, value in student.state_dict().items():
                value.copy_(start.state_dict()[name])
