"""Kept import path: the model lives in :mod:`recipes.core.model`."""

from recipes.core.model import *  # noqa: F403
from recipes.core.model import __all__  # noqa: F401
