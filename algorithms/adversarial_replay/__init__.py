"""Reuse idea 4: adversarial examples made once against past checkpoints, replayed into new training
(see README.md in this folder)."""

from algorithms.adversarial_replay.bank import AdversarialBank, build_bank
from algorithms.adversarial_replay.pgd import EvalRobustness, pgd, robust_accuracy
from algorithms.adversarial_replay.replay import AdversarialReplay, DualBatchNorm2d, add_aux_batchnorms

__all__ = [
    'AdversarialBank',
    'AdversarialReplay',
    'DualBatchNorm2d',
    'EvalRobustness',
    'add_aux_batchnorms',
    'build_bank',
    'pgd',
    'robust_accuracy',
]
