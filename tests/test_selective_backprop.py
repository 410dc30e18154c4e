"""Composer's SelectiveBackprop on index-carrying batches: the rows it keeps are Composer's, every item of the batch
keeps the same rows (the dataset indices stay aligned with the images and labels), and the curriculum's loss weights
apply to the kept rows."""

from __future__ import annotations

import numpy as np
import torch
from composer.algorithms.selective_backprop import select_using_loss
from composer.core import Callback, State
from composer.loggers import Logger
from conftest import TINY
from torch import nn

from algorithms.batches import keep_rows
from algorithms.curriculum import ScoreCurriculum
from algorithms.curriculum.curriculum import reweighted_loss
from algorithms.selective_backprop import selected_rows
from recipes.config import load_config
from recipes.core.data import MDSImageDataset, resolve_root
from recipes.trainer import build_trainer

SB = 'algorithms.selective_backprop'
EVERY_BATCH = (f'{SB}.start=0.0', f'{SB}.end=1.0', f'{SB}.keep=0.5', f'{SB}.interrupt=0')


def test_selected_rows_are_the_rows_composers_select_using_loss_keeps():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = torch.randn(12, 5), torch.randint(3, (12,))

    def loss(outputs, targets, reduction='none'):
        return nn.functional.cross_entropy(outputs, targets, reduction=reduction)

    np.random.seed(3)
    composer_x, composer_y = select_using_loss(x, y, model, loss, keep=0.5)
    np.random.seed(3)
    rows = selected_rows(x, y, model, loss, keep=0.5)
    assert len(rows) == 6 and torch.equal(x[rows], composer_x) and torch.equal(y[rows], composer_y)


def test_keep_rows_prunes_every_per_example_item_alike():
    batch = (torch.arange(8.0).view(4, 2), torch.tensor([0, 1, 2, 3]), torch.tensor([40, 41, 42, 43]))
    images, labels, indices = keep_rows(batch, torch.tensor([3, 1]))
    assert images.tolist() == [[6.0, 7.0], [2.0, 3.0]] and labels.tolist() == [3, 1] and indices.tolist() == [43, 41]
    assert keep_rows({'x': batch[0], 'n': 4}, torch.tensor([0]))['n'] == 4


class Record(Callback):
    """The batch, outputs and loss after the algorithms' AFTER_LOSS (callbacks run after algorithms)."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def after_loss(self, state: State, logger: Logger) -> None:
        self.seen.append((tuple(t.detach().clone() for t in state.batch), state.outputs.detach().clone(),
                          state.loss.detach().clone()))


def trained(*overrides: str) -> tuple:
    trainer = build_trainer(load_config(None, [*TINY, 'max_duration=2ba', 'data.augment=false', *EVERY_BATCH,
                                               *overrides]))
    record = Record()
    trainer.state.callbacks.append(record)
    trainer.fit()
    trainer.close()
    return trainer, record.seen


def test_the_indices_stay_aligned_with_the_kept_rows():
    _, seen = trained()
    dataset = MDSImageDataset(resolve_root('digits', None), 'train', 10)
    assert len(seen) == 2
    for (images, labels, indices), outputs, _ in seen:
        assert len(images) == len(labels) == len(indices) == len(outputs) == 16  # half of 32
        for image, label, index in zip(images, labels, indices, strict=True):
            stored_image, stored_label, _ = dataset[int(index)]
            assert torch.equal(image, stored_image) and int(label) == stored_label


def test_the_curriculums_loss_weights_apply_to_the_kept_rows(artifacts):
    trainer, seen = trained(f'algorithms.grand_curriculum.scores={artifacts.scores}',
                            'algorithms.grand_curriculum.reweight=score')
    curriculum = next(alg for alg in trainer.state.algorithms if isinstance(alg, ScoreCurriculum))
    for (_, labels, indices), outputs, loss in seen:
        assert len(indices) == 16
        weights = curriculum.weights[indices]
        assert not torch.allclose(weights, torch.ones_like(weights))
        torch.testing.assert_close(loss, reweighted_loss(outputs, labels, weights))


def test_the_digits_recipe_builds_composers_defaults_with_a_spelled_repr():
    trainer = build_trainer(load_config('yamls/digits/selective_backprop.yaml', [
        'save_folder=null', 'data.num_workers=0', 'callbacks={}']))
    assert repr(trainer.state.algorithms[0]) == (
        'IndexedSelectiveBackprop(start=0.5, end=0.9, keep=0.5, scale_factor=1.0, interrupt=2)')
    trainer.close()
