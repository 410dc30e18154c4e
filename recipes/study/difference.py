"""The first difference between two nested configs, as one phrase: what a stale run and a changed registration
name (:mod:`recipes.study.runner`, :mod:`recipes.study.registration`)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ['first_difference']


def _flat(config: Any, prefix: str = '') -> dict[str, Any]:
    if isinstance(config, dict) and config:
        flat: dict[str, Any] = {}
        for key, value in config.items():
            flat.update(_flat(value, f'{prefix}{key}.'))
        return flat
    return {prefix.rstrip('.'): config}


_ABSENT = object()


def first_difference(recorded: dict[str, Any], planned: dict[str, Any], verb: str = 'trained with') -> str:
    """``data.holdout (trained with: absent, now: 144)``: the first key, in the planned config's order, whose value
    differs, then the keys only the recorded one has."""
    old, new = _flat(recorded), _flat(planned)
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b:
            show = lambda v: 'absent' if v is _ABSENT else json.dumps(v, default=str)  # noqa: E731
            return f'{key} ({verb}: {show(a)}, now: {show(b)})'
    return 'none (the same keys and values, another fingerprint)'
