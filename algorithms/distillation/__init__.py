"""Reuse idea 1 and 2: a past run's checkpoints as frozen teachers (see README.md in this folder)."""

from algorithms.distillation.checkpoint_mixup import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.distillation.distillation import PastRunDistillation, TeacherDistillation, check_kd_args, kd_loss

__all__ = [
    'CheckpointMixupTeacher',
    'PastRunDistillation',
    'TeacherDistillation',
    'check_kd_args',
    'kd_loss',
    'mix_teacher_outputs',
]
