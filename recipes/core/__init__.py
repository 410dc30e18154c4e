"""The bottom layer: the model, the data, storage, errors and the files of a run folder.

Nothing here imports :mod:`algorithms`, the run assembly (:mod:`recipes.config`, :mod:`recipes.registry`,
:mod:`recipes.trainer`, ...) or the study tooling (:mod:`recipes.study`); ``tests/test_layers.py`` holds it to that.
"""
