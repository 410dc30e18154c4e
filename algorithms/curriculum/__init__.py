"""Reuse idea 3: per-example difficulty scores of past runs order, pace, prune or reweight the next run's data
(see README.md in this folder)."""

from algorithms.curriculum.curriculum import CurriculumSampler, GraNdCurriculum, ScoreCurriculum, pacing_size
from algorithms.curriculum.grand import el2n, per_example_grad_norms, per_example_loss
from algorithms.curriculum.record_scores import RecordScores
from algorithms.curriculum.scores import read_scores, write_scores

__all__ = [
    'CurriculumSampler',
    'GraNdCurriculum',
    'RecordScores',
    'ScoreCurriculum',
    'el2n',
    'pacing_size',
    'per_example_grad_norms',
    'per_example_loss',
    'read_scores',
    'write_scores',
]
