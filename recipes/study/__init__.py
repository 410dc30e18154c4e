"""The top layer: sweeps over recipes, seeds and budgets, and the report that answers a study.

It drives ``launch/train.py`` runs and reads their run folders; nothing below it imports it.
"""
