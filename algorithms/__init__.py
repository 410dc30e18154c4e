"""Composer algorithms that reuse the checkpoints and by-products of past training runs."""

from algorithms.adv_bank import AdversarialBank, build_bank
from algorithms.adversarial import EvalRobustness, pgd, robust_accuracy
from algorithms.adversarial_replay import AdversarialReplay, DualBatchNorm2d, add_aux_batchnorms
from algorithms.checkpoint_mixup import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.distillation import PastRunDistillation, kd_loss

__all__ = [
    'AdversarialBank',
    'AdversarialReplay',
    'CheckpointMixupTeacher',
    'DualBatchNorm2d',
    'EvalRobustness',
    'PastRunDistillation',
    'add_aux_batchnorms',
    'build_bank',
    'kd_loss',
    'mix_teacher_outputs',
    'pgd',
    'robust_accuracy',
]
