"""Composer algorithms that reuse the checkpoints and by-products of past training runs.

One package per reuse idea (:mod:`algorithms.distillation`, :mod:`algorithms.curriculum`,
:mod:`algorithms.adversarial_replay`) and one for the reuse baselines every idea must beat
(:mod:`algorithms.warm_start`), each with its functional forms, its Algorithm classes and a README; what every
idea shares stays here: :mod:`algorithms.past_run` (reading past runs) and :mod:`algorithms.ledger` (the compute
ledger).
"""

from algorithms.adversarial_replay import (
    AdversarialBank,
    AdversarialReplay,
    DualBatchNorm2d,
    EvalRobustness,
    add_aux_batchnorms,
    build_bank,
    pgd,
    robust_accuracy,
)
from algorithms.curriculum import (
    CurriculumSampler,
    GraNdCurriculum,
    RecordScores,
    el2n,
    pacing_size,
    per_example_grad_norms,
    read_scores,
    write_scores,
)
from algorithms.distillation import CheckpointMixupTeacher, PastRunDistillation, kd_loss, mix_teacher_outputs
from algorithms.warm_start import ShrinkPerturb, WarmStart, shrink_perturb

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
    'ShrinkPerturb',
    'WarmStart',
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
    'shrink_perturb',
    'write_scores',
]
