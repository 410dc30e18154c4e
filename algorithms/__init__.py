"""Composer algorithms that reuse the checkpoints and by-products of past training runs."""

from algorithms.checkpoint_mixup import CheckpointMixupTeacher, mix_teacher_outputs
from algorithms.distillation import PastRunDistillation, kd_loss

__all__ = ['CheckpointMixupTeacher', 'PastRunDistillation', 'kd_loss', 'mix_teacher_outputs']
