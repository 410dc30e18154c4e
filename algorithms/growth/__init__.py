"""Model growth (Net2Net): start a larger network from a smaller trained one, deeper or wider, from the same function."""

from algorithms.growth.growth import DEPTH_METHODS, GrowFromPastRun, grow, grow_depth, grow_width

__all__ = ['DEPTH_METHODS', 'GrowFromPastRun', 'grow', 'grow_depth', 'grow_width']
