"""Reuse idea 5: a past run's losses as the irreducible losses of reducible-loss selection (RHO-LOSS; see README.md in
this folder)."""

from algorithms.reducible_loss.reducible_loss import ReducibleLossSelection, select_reducible

__all__ = ['ReducibleLossSelection', 'select_reducible']
