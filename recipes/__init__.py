"""What a run is assembled from.

Layers, imports flowing downwards only:

* bottom: :mod:`recipes.model`, :mod:`recipes.data`, :mod:`recipes.storage`, :mod:`recipes.errors`
  (no imports from :mod:`algorithms` or from the run-assembly modules);
* :mod:`algorithms` builds on the bottom layer;
* run assembly: :mod:`recipes.config`, :mod:`recipes.registry`, :mod:`recipes.trainer` build a Trainer from a YAML.

``tests/test_layers.py`` enforces this order.
"""
