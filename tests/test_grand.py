"""GraNd and EL2N against their definitions, and the training-time record of losses, EL2N and forgetting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from algorithms.curriculum.grand import el2n, per_example_grad_norms, per_example_loss
from algorithms.curriculum.record_scores import ScoreRecord, example_stats, forgetting_scores
from recipes.core.model import resnet_cifar


def small_resnet_in_eval_mode() -> torch.nn.Module:
    # float64: a batched and a single-example convolution then agree to round-off, so no ReLU input near zero can
    # change sign between the two paths (in float32 they differ by ~1e-7, enough to flip one now and then).
    torch.manual_seed(0)
    model = resnet_cifar('resnet_20', 10).module.double()
    with torch.no_grad():  # non-trivial running statistics for BatchNorm to use in eval mode
        for _ in range(2):
            model(torch.rand(16, 3, 32, 32, dtype=torch.float64))
    return model.eval()


def test_per_example_grad_norms_equal_an_autograd_loop() -> None:
    model = small_resnet_in_eval_mode()
    inputs, targets = torch.rand(4, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 3, 3, 7])
    loop = []
    for x, y in zip(inputs, targets, strict=True):
        model.zero_grad()
        F.cross_entropy(model(x[None]), y[None]).backward()
        loop.append(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())))
    expected = torch.stack(loop)
    for chunk_size in (None, 3):
        norms = per_example_grad_norms(model, inputs, targets, chunk_size=chunk_size)
        assert norms.shape == (4,)
        assert ((norms - expected).abs() / expected).max() < 1e-4
    assert model.training is False


def test_per_example_grad_norms_need_trainable_parameters() -> None:
    model = resnet_cifar('resnet_20', 10).module.eval().requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'):
        per_example_grad_norms(model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))


def test_el2n_and_loss_are_their_formulas() -> None:
    logits, targets = torch.randn(5, 4) * 3, torch.tensor([0, 1, 2, 3, 3])
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    onehot = np.eye(4)[targets.numpy()]
    np.testing.assert_allclose(el2n(logits, targets).numpy(), np.linalg.norm(p - onehot, axis=1), rtol=1e-5)
    np.testing.assert_allclose(per_example_loss(logits, targets).numpy(), -np.log(p[np.arange(5), targets]), rtol=1e-5)
    perfect = torch.tensor([[100.0, 0.0], [0.0, 100.0]])
    assert el2n(perfect, torch.tensor([0, 1])).max() < 1e-6
    assert torch.allclose(el2n(perfect, torch.tensor([1, 0])), torch.full((2,), 2**0.5))


def test_record_counts_forgetting_events_and_keeps_the_last_visit() -> None:
    record = ScoreRecord(4)
    right, wrong = torch.tensor([[5.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    visits = {0: [right, wrong, right, wrong], 1: [right, right, right], 2: [wrong, wrong], 3: [wrong, right, wrong]}
    for index, logits in visits.items():
        for out in logits:
            record.update(torch.tensor([index]), example_stats(out, torch.tensor([0])))
    assert record.forgetting.tolist() == [2, 0, 0, 1]
    assert record.learned.tolist() == [True, True, False, True]
    assert record.visits.tolist() == [4, 3, 2, 3]
    assert torch.allclose(record.el2n, el2n(torch.cat([wrong, right, wrong, wrong]), torch.zeros(4, dtype=torch.long)))
    assert forgetting_scores(record.state_dict()).tolist() == [2.0, 0.0, 3.0, 1.0]  # never learned: max + 1
    record.new_epoch()
    assert record.visits.sum() == 0 and torch.isnan(record.loss).all() and record.forgetting.tolist() == [2, 0, 0, 1]
