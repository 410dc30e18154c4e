"""L-infinity PGD (Madry et al. 2018) on images in ``[0, 1]``, and the checks of its parameters.

The attacked model takes pixels in ``[0, 1]`` and normalises them itself (:mod:`recipes.core.model`), so the eps-ball and
the ``[0, 1]`` box are both in pixel space. One step is
``x <- clip_[x0 - eps, x0 + eps] ∩ [0, 1] (x + step_size * sign(grad_x CE(f(x), y)))``, from a uniform random start
in the ball when ``random_start``; ``steps=1, step_size=eps, random_start=False`` is FGSM.

:func:`robust_accuracy` measures clean and PGD accuracy; :class:`EvalRobustness` logs both during training.

torchattacks 3.5.1 (last release 2023) implements the same loop but pins ``requests~=2.25.1``, which conflicts with
Composer's ``requests>=2.26``, and its attack base class switches the model's mode itself; the loop is short, so it
lives here.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist, model_eval_mode
from torch import Tensor, nn

from recipes.core.declare import checked
from recipes.core.errors import UsageError
from recipes.core.rules import SEED, Number, PixelValue, parse_pixel_value, pixel_text
from recipes.core.ties import Ties, Values

__all__ = ['ATTACK_TIES', 'EvalRobustness', 'parse_pixel_value', 'pgd', 'pixel_text', 'robust_accuracy']


def pgd(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Adversarial versions of ``images`` (N, C, H, W in ``[0, 1]``) that raise ``model``'s loss on ``targets``.

    The attack runs the model in eval mode, so BatchNorm uses (and does not update) its running statistics, and
    restores the model's mode afterwards. Gradients are taken with respect to the input only: no parameter's
    ``.grad`` is touched. Works inside ``torch.no_grad()`` (an evaluation loop). The random start draws from
    ``generator`` (on the images' device), or from torch's global generator when it is None.
    """
    if eps < 0 or step_size < 0 or steps < 0:
        raise ValueError(f'eps, step_size and steps must be non-negative, got {eps}, {step_size}, {steps}')
    clean = images.detach()
    low, high = (clean - eps).clamp(min=0), (clean + eps).clamp(max=1)
    adversarial = clean.clone()
    if random_start:
        adversarial = torch.max(torch.min(adversarial + torch.empty_like(clean).uniform_(-eps, eps, generator=generator), high), low)
    with model_eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            adversarial.requires_grad_(True)
            loss = F.cross_entropy(model(adversarial), targets, reduction='sum')
            (grad,) = torch.autograd.grad(loss, adversarial)
            adversarial = torch.max(torch.min(adversarial.detach() + step_size * grad.sign(), high), low)
    return adversarial.detach()


ATTACK_TIES = Ties('a PGD attack')  # beside the rules of eps, step_size and steps in each declaration


@ATTACK_TIES.tie('eps', 'step_size')
def _step_within_the_radius(attack: Values) -> None:
    """``step_size`` is at most ``eps``: a longer step leaves the ball at once."""
    eps, step = attack['eps'], attack.get('step_size')
    if step is not None and step > eps:
        raise UsageError(
            f'{attack.key("step_size")}={pixel_text(step)} is out of range: use a step in (0, eps={pixel_text(eps)}], '
            'e.g. eps/4 (2/255 for 8/255)',
        )


def robust_accuracy(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    eps: float,
    step_size: float,
    steps: int,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> tuple[int, int]:
    """How many of ``images`` the model classifies correctly, clean and under :func:`pgd` (model on its device)."""
    device = next(model.parameters()).device
    clean_correct = adversarial_correct = 0
    with model_eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            x_adv = pgd(model, x, y, eps, step_size, steps, generator=generator)
            with torch.no_grad():
                clean_correct += int((model(x).argmax(1) == y).sum())
                adversarial_correct += int((model(x_adv).argmax(1) == y).sum())
    return clean_correct, adversarial_correct


def _network(model: nn.Module) -> nn.Module:
    """The bare network inside a (possibly DDP-wrapped) ComposerClassifier."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return model.module


@checked
class EvalRobustness(Callback):
    """Log clean and PGD accuracy on a fixed subset of the evaluation data after each evaluation.

    Uses ``Event.EVAL_END`` of the first evaluator: the model is in eval mode there (the main BatchNorms of
    adversarial replay serve), and the evaluation data is at hand. The subset is the first ``num_samples`` of the
    evaluation set, split over the ranks; counts are summed over ranks. The random start uses a generator seeded
    with ``seed``, so the metric is a function of the weights alone and training randomness is untouched.
    Logs ``metrics/robustness/clean_accuracy`` and ``metrics/robustness/pgd_accuracy``.
    """

    def __init__(
        self,
        eps: Annotated[float, PixelValue(), 'the attack\'s L-inf radius'] = 8 / 255,
        steps: Annotated[int, Number(1, 10_000, integer=True), 'PGD steps'] = 10,
        step_size: Annotated[float | None, PixelValue(optional=True), 'null: eps / 4'] = None,
        num_samples: Annotated[int, Number(1, 10**9, integer=True), 'the first test images attacked'] = 512,
        batch_size: Annotated[int, Number(1, 1_000_000, integer=True), 'images attacked at once'] = 256,
        seed: Annotated[int, SEED, 'the random starts\' seed'] = 0,
    ) -> None:
        self.eps = eps
        self.step_size = eps / 4 if step_size is None else step_size
        self.steps = steps
        ATTACK_TIES.check(Values({'eps': eps, 'step_size': self.step_size}, prefix='eval_robustness.'))
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self._subset: tuple[Tensor, Tensor] | None = None

    def _take_subset(self, dataset) -> tuple[Tensor, Tensor]:
        count = min(self.num_samples, len(dataset))
        items = [dataset[i] for i in range(dist.get_global_rank(), count, dist.get_world_size())]
        images = torch.stack([item[0] for item in items]) if items else torch.zeros(0)
        targets = torch.tensor([int(item[1]) for item in items], dtype=torch.int64)
        return images, targets

    def eval_end(self, state: State, logger: Logger) -> None:
        if state.dataloader_label != state.evaluators[0].label:
            return
        if self._subset is None:
            self._subset = self._take_subset(state.dataloader.dataset)  # type: ignore[union-attr]
        images, targets = self._subset
        network = _network(state.model)
        device = next(network.parameters()).device
        correct = (0, 0)
        if len(images):
            generator = torch.Generator(device=device).manual_seed(self.seed)
            correct = robust_accuracy(
                network, images, targets, self.eps, self.step_size, self.steps, self.batch_size, generator,
            )
        totals = torch.tensor([*correct, len(targets)], dtype=torch.float64, device=device)
        dist.all_reduce(totals, reduce_operation='SUM')
        clean, adversarial, count = totals.tolist()
        logger.log_metrics({
            'metrics/robustness/clean_accuracy': clean / count,
            'metrics/robustness/pgd_accuracy': adversarial / count,
        })
