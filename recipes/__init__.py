"""What a run is assembled from, in three layers whose imports flow downwards only:

* :mod:`recipes.core`: the model, the data, storage, errors and the run folder's files (imports nothing above);
* :mod:`algorithms` (a sibling package) builds on :mod:`recipes.core`;
* run assembly: :mod:`recipes.config`, :mod:`recipes.registry`, :mod:`recipes.trainer`, :mod:`recipes.presets`,
  :mod:`recipes.cli` build a Trainer from a YAML;
* :mod:`recipes.study`: sweeps and reports, on top of everything.

``tests/test_layers.py`` enforces this order. ``recipes.model`` and ``recipes.data`` are kept as the import paths
the README's preset example has always used.
"""

import os as _os  # noqa: E402

from recipes.core.errors import PLACES as _PLACES  # noqa: E402 - after the docstring, before any module below reads it

_PLACES.update({name: f'launch/{name}.py' for name in (
    'train', 'score', 'build_adv_bank', 'cache_teacher', 'inspect_run', 'convert_cifar100', 'convert_images')})
_PLACES.update(recipes=_os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), 'yamls'),
               digits_recipe='yamls/digits/baseline.yaml', cifar100_recipe='yamls/baseline.yaml')
