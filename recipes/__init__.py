"""What a run is assembled from, in three layers whose imports flow downwards only:

* :mod:`recipes.core`: the model, the data, storage, errors and the run folder's files (imports nothing above);
* :mod:`algorithms` (a sibling package) builds on :mod:`recipes.core`;
* run assembly: :mod:`recipes.config`, :mod:`recipes.registry`, :mod:`recipes.trainer`, :mod:`recipes.presets`,
  :mod:`recipes.cli` build a Trainer from a YAML;
* :mod:`recipes.study`: sweeps and reports, on top of everything.

``tests/test_layers.py`` enforces this order. ``recipes.model`` and ``recipes.data`` are kept as the import paths
the README's preset example has always used.
"""
