"""Reducible-loss selection: the top-k rule on hand-computed numbers, the kept rows of a hand-built batch, the loader
batch the trainer gives it, and the selection forward booked by the compute ledger."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from composer.core import Event, Precision
from composer.devices import DeviceCPU
from conftest import TINY
from torch import nn

from algorithms.curriculum.scores import write_scores
from algorithms.ledger import count_flops
from algorithms.reducible_loss import ReducibleLossSelection, select_reducible
from recipes.config import load_config
from recipes.core.errors import UsageError
from recipes.core.model import resnet_cifar
from recipes.trainer import build_trainer


def test_select_reducible_keeps_the_k_largest_differences_in_decreasing_order_ties_to_the_lower_index():
    losses = torch.tensor([2.0, 1.0, 3.0, 0.5, 2.5])
    irreducible = torch.tensor([0.5, 0.0, 2.0, 0.0, 1.0])  # differences 1.5, 1.0, 1.0, 0.5, 1.5
    assert select_reducible(losses, irreducible, 3).tolist() == [0, 4, 1]
    assert select_reducible(losses, irreducible, 5).tolist() == [0, 4, 1, 2, 3]
    assert select_reducible(losses, irreducible, 0).tolist() == []


def test_select_reducible_refuses_mismatched_shapes_and_k_out_of_range():
    with pytest.raises(ValueError, match='must be 1-D and of one length'):
        select_reducible(torch.zeros(3), torch.zeros(4), 1)
    with pytest.raises(ValueError, match='k=4 is out of range'):
        select_reducible(torch.zeros(3), torch.zeros(3), 4)


def scores_artifact(folder, values: np.ndarray) -> str:
    uri = str(folder / 'il.npy')
    write_scores(uri, values.astype(np.float32), {'method': 'loss', 'dataset': {'name': 'hand', 'size': len(values)},
                                                  'runs': [], 'checkpoints': [], 'compute': {'flops_estimate': 1.0}})
    return uri


L3 = math.log(3)
# Two classes, target 0 in every row: logits [0, 0] give CE ln 2 = 0.6931, [0, ln 3] give ln 4 = 1.3863 and
# [ln 3, 0] give ln(4/3) = 0.2877.
LOGITS = torch.tensor([[0.0, 0.0], [0.0, L3], [L3, 0.0], [0.0, L3], [0.0, 0.0], [L3, 0.0]])
IRREDUCIBLE = {10: 0.1, 11: 1.2, 12: 0.0, 13: 0.0, 14: 0.5, 15: 0.3}
# reducible: 0.5931, 0.1863, 0.2877, 1.3863, 0.1931, -0.0123 -> the top 3 are rows 3, 0, 2


class ByIndex(nn.Module):
    """A model whose logits for a row are LOGITS[its dataset index - 10]."""

    def forward(self, batch):
        return LOGITS[batch[2] - 10]


def test_the_kept_rows_of_a_hand_built_batch_are_the_top_k_by_reducible_loss(tmp_path):
    il = np.zeros(16)
    for index, value in IRREDUCIBLE.items():
        il[index] = value
    alg = ReducibleLossSelection(scores_artifact(tmp_path, il), keep=0.5, batch_size=3)
    assert alg.loader_batch_size(3) == 6
    inputs = torch.arange(6.0)[:, None].expand(6, 4).clone()  # row r holds r
    batch = (inputs, torch.zeros(6, dtype=torch.long), torch.arange(10, 16))
    state = SimpleNamespace(batch=batch, model=ByIndex(), device=DeviceCPU(), precision=Precision.FP32,
                            precision_config=None)
    assert alg.match(Event.AFTER_DATALOADER, state)
    alg.apply(Event.AFTER_DATALOADER, state, logger=None)
    kept_inputs, kept_targets, kept_indices = state.batch
    assert kept_indices.tolist() == [13, 10, 12]
    assert kept_inputs[:, 0].tolist() == [3.0, 0.0, 2.0] and kept_targets.tolist() == [0, 0, 0]


def test_a_batch_without_dataset_indices_is_refused_in_one_line(tmp_path):
    alg = ReducibleLossSelection(scores_artifact(tmp_path, np.zeros(16)), keep=0.5, batch_size=3)
    state = SimpleNamespace(batch=(torch.zeros(6, 4), torch.zeros(6, dtype=torch.long)), model=ByIndex(),
                            device=DeviceCPU(), precision=Precision.FP32, precision_config=None)
    with pytest.raises(UsageError, match=r'must be \(inputs, targets, indices\)'):
        alg.apply(Event.AFTER_DATALOADER, state, logger=None)


RHO = 'algorithms.reducible_loss_selection'


def test_the_loader_gives_the_large_batch_the_step_trains_on_k_and_the_ledger_books_the_selection(artifacts, tmp_path):
    trainer = build_trainer(load_config(None, [
        *TINY, 'max_duration=1ba', 'eval_interval=1ba', f'save_folder={tmp_path}', f'{RHO}.scores={artifacts.scores}',
        f'{RHO}.keep=0.25']))
    assert trainer.state.train_dataloader.batch_size == 128  # data.global_batch_size=32 over keep 0.25
    trainer.fit()
    trainer.close()
    recorded = json.loads((tmp_path / 'compute.json').read_text())
    model = resnet_cifar('resnet_20', 10)
    x, y = torch.rand(128, 3, 32, 32), torch.randint(10, (128,))
    with torch.no_grad():
        forward_128 = count_flops(model.module, x)
    step_32 = count_flops(lambda: model.loss(model((x[:32], y[:32])), (x[:32], y[:32])).backward())
    assert recorded['samples'] == 128  # what the loader gave
    assert recorded['spent']['selection'] == pytest.approx(forward_128, rel=1e-9)  # a forward of the large batch
    assert recorded['spent']['student'] == pytest.approx(step_32, rel=1e-9)  # the step trained on 32


def test_a_curriculum_with_reducible_loss_selection_is_refused_in_one_line(artifacts):
    with pytest.raises(UsageError) as error:
        build_trainer(load_config(None, [*TINY, f'{RHO}.scores={artifacts.scores}',
                                         f'algorithms.grand_curriculum.scores={artifacts.scores}']))
    assert '\n' not in str(error.value) and 'keep one of them' in str(error.value)


def test_the_digits_recipe_trains_on_64_of_each_640(artifacts):
    trainer = build_trainer(load_config('yamls/digits/reducible_loss_selection.yaml', [
        f'{RHO}.scores={artifacts.scores}', 'save_folder=null', 'data.num_workers=0', 'callbacks={}']))
    selection = next(alg for alg in trainer.state.algorithms if isinstance(alg, ReducibleLossSelection))
    assert (selection.keep, selection.batch_size, trainer.state.train_dataloader.batch_size) == (0.1, 64, 640)
    trainer.close()
