"""Per-example difficulty scores of a trained network: GraNd and EL2N (Paul, Ganguli, Dziugaite 2021).

* GraNd: the L2 norm of each example's gradient of the cross-entropy loss over all trainable parameters.
* EL2N: ``|| softmax(f(x)) - onehot(y) ||_2``, the error vector's norm; one forward pass, no gradients.

Both are computed with the network as given: a scorer passes it in eval mode, so BatchNorm uses its running
statistics and each example's score does not depend on the rest of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

__all__ = ['el2n', 'per_example_grad_norms', 'per_example_loss']


def _at_least_fp32(logits: Tensor) -> Tensor:
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def per_example_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """The cross-entropy of each example, ``[B]``."""
    return F.cross_entropy(_at_least_fp32(logits), targets, reduction='none')


def el2n(logits: Tensor, targets: Tensor) -> Tensor:
    """``|| softmax(logits) - onehot(targets) ||_2`` per example, ``[B]``."""
    probs = torch.softmax(_at_least_fp32(logits), dim=1)
    error = probs - F.one_hot(targets, num_classes=logits.shape[1]).to(probs.dtype)
    return torch.linalg.vector_norm(error, dim=1)


def per_example_grad_norms(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    chunk_size: int | None = None,
) -> Tensor:
    """The L2 norm of each example's cross-entropy gradient over ``model``'s trainable parameters, ``[B]``.

    Vectorised with ``torch.func``: ``vmap(grad(loss))`` over the batch, the parameters passed through
    ``functional_call`` and the buffers shared, so the model is used exactly as given (pass it in eval mode).
    ``chunk_size`` bounds how many per-example gradients are held at once (all of them when ``None``).
    """
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError('the model has no trainable parameters: call model.requires_grad_(True) before scoring')
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(_at_least_fp32(logits), y.unsqueeze(0))

    def squared_norm(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        grads = grad(loss)(p, x, y)
        return sum(_at_least_fp32(g).pow(2).sum() for g in grads.values())

    squared = vmap(squared_norm, in_dims=(None, 0, 0), chunk_size=chunk_size)(params, inputs, targets)
    return squared.sqrt()
