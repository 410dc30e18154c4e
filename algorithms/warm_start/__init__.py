"""Reuse baselines every method must beat: warm starting from a past run, plainly or shrunk and perturbed."""

from algorithms.warm_start.warm_start import ShrinkPerturb, WarmStart, check_same_architecture, shrink_perturb

__all__ = ['ShrinkPerturb', 'WarmStart', 'check_same_architecture', 'shrink_perturb']
