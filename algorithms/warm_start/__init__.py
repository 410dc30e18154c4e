"""Reuse baselines every method must beat: warm starting from a past run, plainly, shrunk and perturbed, or shrunk by
DASH."""

from algorithms.warm_start.dash import DashWarmStart, averaged_gradient, dash_shrink, shrink_factors
from algorithms.warm_start.warm_start import ShrinkPerturb, WarmStart, check_same_architecture, shrink_perturb

__all__ = [
    'DashWarmStart',
    'ShrinkPerturb',
    'WarmStart',
    'averaged_gradient',
    'check_same_architecture',
    'dash_shrink',
    'shrink_factors',
    'shrink_perturb',
]
