"""Composer algorithms that reuse the checkpoints and by-products of past training runs."""

from algorithms.adv_bank import AdversarialBank, build_bank
from algorithms.adversarial import EvalRobustness, pgd, robust_accuracy
from algorithms.adversarial_replay import AdversarialReplay, DualBatchNorm2d, add_aux_batchnorms
from algorithms.checkpoint_mixup import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.curriculum import CurriculumSampler, GraNdCurriculum, pacing_size
from algorithms.distillation import PastRunDistillation, kd_loss
from algorithms.grand import el2n, per_example_grad_norms
from algorithms.record_scores import RecordScores
from algorithms.scores import read_scores, write_scores

__all__ = [
    'AdversarialBank',
    'AdversarialReplay',
    'CheckpointMixupTeacher',
    'CurriculumSampler',
    'DualBatchNorm2d',
    'EvalRobustness',
    'GraNdCurriculum',
    'PastRunDistillation',
    'RecordScores',
    'add_aux_batchnorms',
    'build_bank',
    'el2n',
    'kd_loss',
    'mix_teacher_outputs',
    'pacing_size',
    'per_example_grad_norms',
    'pgd',
    'read_scores',
    'robust_accuracy',
    'write_scores',
]
