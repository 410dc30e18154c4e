"""What the benches share: the device a result was measured on, the time of one call, the JSON file of a result, and
a past run folder whose checkpoints hold random resnet_56 weights (a teacher's or a warm start's cost does not
depend on its weights).

The benches run as scripts (``python bench/NAME.py``), so this directory is first on ``sys.path``: they import it
as ``common``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import torch
import yaml

from recipes.core.model import resnet_cifar

__all__ = ['device_name', 'timed', 'write_json', 'write_teacher_run']


def device_name() -> str:
    """The GPU's name, or ``cpu xN`` with N the machine's logical cores."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else f'cpu x{os.cpu_count()}'


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds ``fn()`` took, the GPU's queued work waited for before and after (on a GPU ``device``)."""
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def write_json(result: dict[str, Any], path: str | None) -> None:
    """``result`` as indented JSON (one space a level) in file ``path``; nothing when ``path`` is None or empty."""
    if path:
        with open(path, 'w') as f:
            f.write(json.dumps(result, indent=1) + '\n')


def write_teacher_run(folder: str, epochs: int, model: str = 'resnet_56', data: str | None = None) -> None:
    """A run folder with ``config.yaml`` and ``epochs`` checkpoints of ``model`` (100 classes) holding random weights;
    ``data`` names its data set (a teacher cache reads the run's training split)."""
    config: dict = {'model': {'name': model, 'num_classes': 100}}
    if data is not None:
        config['data'] = {'name': data}
    with open(os.path.join(folder, 'config.yaml'), 'w') as f:
        yaml.safe_dump(config, f)
    for epoch in range(1, epochs + 1):
        weights = resnet_cifar(model, 100).state_dict()
        torch.save({'state': {'model': weights}}, os.path.join(folder, f'ep{epoch}-ba{epoch}-rank0.pt'))
