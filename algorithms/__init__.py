"""Composer algorithms that reuse the checkpoints and by-products of past training runs.

One package per reuse idea (:mod:`algorithms.distillation`, :mod:`algorithms.curriculum`,
:mod:`algorithms.adversarial_replay`, :mod:`algorithms.reducible_loss`), one for the reuse baselines every idea must
beat (:mod:`algorithms.warm_start`: warm start, shrink-and-perturb, DASH), one for growing a past model into a larger one
(:mod:`algorithms.growth`, Net2Net) and one for Composer's SelectiveBackprop on
this project's batches (:mod:`algorithms.selective_backprop`), each with its functional forms, its Algorithm classes
and a README; what every idea shares stays here: :mod:`algorithms.past_run` (reading past runs),
:mod:`algorithms.ledger` (the compute ledger), :mod:`algorithms.protocols` (what an algorithm may offer a run) and
:mod:`algorithms.batches` (keeping some rows of a batch).
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
from algorithms.growth import GrowFromPastRun, grow_depth, grow_width
from algorithms.reducible_loss import ReducibleLossSelection, select_reducible
from algorithms.selective_backprop import IndexedSelectiveBackprop, selected_rows
from algorithms.warm_start import (
    DashWarmStart,
    ShrinkPerturb,
    WarmStart,
    averaged_gradient,
    dash_shrink,
    shrink_perturb,
)

__all__ = [
    'AdversarialBank',
    'AdversarialReplay',
    'CheckpointMixupTeacher',
    'CurriculumSampler',
    'DashWarmStart',
    'DualBatchNorm2d',
    'EvalRobustness',
    'GraNdCurriculum',
    'GrowFromPastRun',
    'IndexedSelectiveBackprop',
    'PastRunDistillation',
    'RecordScores',
    'ReducibleLossSelection',
    'ShrinkPerturb',
    'WarmStart',
    'add_aux_batchnorms',
    'averaged_gradient',
    'build_bank',
    'dash_shrink',
    'el2n',
    'grow_depth',
    'grow_width',
    'kd_loss',
    'mix_teacher_outputs',
    'pacing_size',
    'per_example_grad_norms',
    'pgd',
    'read_scores',
    'robust_accuracy',
    'select_reducible',
    'selected_rows',
    'shrink_perturb',
    'write_scores',
]
