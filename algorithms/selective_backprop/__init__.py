"""Composer's SelectiveBackprop on batches that carry each example's dataset index (see README.md in this folder)."""

from algorithms.selective_backprop.selective_backprop import IndexedSelectiveBackprop, selected_rows

__all__ = ['IndexedSelectiveBackprop', 'selected_rows']
