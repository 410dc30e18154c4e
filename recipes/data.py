"""Kept import path: the data lives in :mod:`recipes.core.data`."""

from recipes.core.data import *  # noqa: F403
from recipes.core.data import __all__  # noqa: F401
