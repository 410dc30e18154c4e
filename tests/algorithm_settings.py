"""How the generic tests (tests/test_algorithms.py) build each algorithm of ``recipes.registry.ALGORITHMS``.

After Composer's ``tests/algorithms/algorithm_settings.py``: one entry per registered name. A name without an
entry fails the suite, so a new algorithm is added here together with its builder.

An entry's ``args`` are the algorithm's YAML arguments; a string value may name the session's artifacts as
``{past_run}``, ``{scores}`` or ``{bank}`` (see :class:`Artifacts`). ``overrides`` are further ``key=value``
overrides of the run (a callback the algorithm works with, a second algorithm it must compose with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Artifacts:
    """What past runs leave behind, built once per test session."""

    past_run: str  # a finished digits run folder (conftest's ``past_run``)
    scores: str  # a scores artifact for the digits training split
    bank: str  # an adversarial bank made against the past run


@dataclass(frozen=True)
class Setting:
    args: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    reuses: bool = False  # a reuse algorithm: it must report reused compute, and more than none

    def yaml_args(self, artifacts: Artifacts) -> dict[str, Any]:
        names = vars(artifacts)
        return {k: v.format(**names) if isinstance(v, str) else v for k, v in self.args.items()}


SETTINGS: dict[str, Setting] = {
    'channels_last': Setting(),
    'cutmix': Setting({'alpha': 1.0}),
    'label_smoothing': Setting({'smoothing': 0.1}),
    'mixup': Setting({'alpha': 0.4}),
    'grand_curriculum': Setting(
        {'scores': '{scores}', 'reweight': 'inverse', 'prune_fraction': 0.1},
        overrides=('callbacks.record_scores={}',),
        reuses=True,
    ),
    'adversarial_replay': Setting({'bank': '{bank}', 'replay_fraction': 0.25}, reuses=True),
    'checkpoint_mixup_teacher': Setting(
        {'run': '{past_run}', 'checkpoints': ['ep1', 'ep2']}, overrides=('algorithms.mixup.alpha=0.4',), reuses=True,
    ),
    'past_run_distillation': Setting(
        {'run': '{past_run}', 'checkpoint': 'ep2'}, overrides=('algorithms.mixup.alpha=0.4',), reuses=True,
    ),
    'random_teacher_distillation': Setting({'run': '{past_run}', 'every': 1}),
    'grow_from_past_run': Setting(
        {'run': '{past_run}', 'checkpoint': 'ep2', 'method': 'identity'}, overrides=('model.name=resnet_32',), reuses=True,
    ),
    'dash_warm_start': Setting({'run': '{past_run}', 'checkpoint': 'ep2', 'batch_size': 500}, reuses=True),
    'reducible_loss_selection': Setting({'scores': '{scores}', 'keep': 0.5}, reuses=True),
    'selective_backprop': Setting({'start': 0.0, 'end': 1.0, 'keep': 0.5, 'interrupt': 0}),
    'shrink_perturb': Setting({'run': '{past_run}', 'checkpoint': 'ep2', 'shrink': 0.4, 'perturb': 0.1}, reuses=True),
    'warm_start': Setting({'run': '{past_run}', 'checkpoint': 'ep2'}, reuses=True),
}
