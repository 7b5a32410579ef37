"""Sharpness-aware minimisation's gradient (Foret et al., ICLR 2021), for use in `after_backward`.

Shared by NESS (SAM on task 0) and DFGP (its weight ascent step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def sam_gradient(model: nn.Module, rho: float, loss_at_current_batch: Callable[[], Tensor]) -> None:
    """Replace the gradients in `model` by those at the perturbed weights w + rho g / ||g||.

    `g` are the gradients present (over every parameter that has one). The loss is recomputed by
    `loss_at_current_batch()` at the perturbed weights and back-propagated; the weights are then
    restored, so the optimizer steps from w with the sharpness-aware gradient.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if not params or rho == 0:
        return
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        shifts = [p.grad * (rho / (norm + 1e-12)) for p in params]
        for p, shift in zip(params, shifts, strict=True):
            p.add_(shift)
            p.grad = None
    loss_at_current_batch().backward()
    with torch.no_grad():
        for p, shift in zip(params, shifts, strict=True):
            p.sub_(shift)
