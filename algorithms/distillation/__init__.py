"""Reuse idea 1 and 2: a past run's checkpoints as frozen teachers (see README.md in this folder)."""

from algorithms.distillation.cache import TeacherCache, build_cache
from algorithms.distillation.checkpoint_mixup import (
    CheckpointMixupTeacher,
    draw_teachers,
    mix_outputs,
    mix_teacher_outputs,
    parse_teachers,
)
from algorithms.distillation.distillation import (
    PastRunDistillation,
    RandomTeacherDistillation,
    TeacherDistillation,
    kd_loss,
    teacher_active,
)

__all__ = [
    'CheckpointMixupTeacher',
    'PastRunDistillation',
    'RandomTeacherDistillation',
    'TeacherCache',
    'TeacherDistillation',
    'build_cache',
    'draw_teachers',
    'kd_loss',
    'mix_outputs',
    'mix_teacher_outputs',
    'parse_teachers',
    'teacher_active',
]
