"""Sharpness-aware minimisation's gradient (Foret et al., ICLR 2021), for use in `after_backward`.

Shared by NESS (SAM on the first task) and DFGP (its weight ascent step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn


def sam_gradient(model: nn.Module, rho: float, loss_at_current_batch: Callable[[], Tensor]) -> None:
    """Replace the gradients in `model` by those at the perturbed weights w + rho g / ||g||.

    `g` are the gradients present (over every parameter that has one). The loss is recomputed by
    `loss_at_current_batch()` at the perturbed weights and back-propagated; the weights are then
    restored bit for bit, so the optimizer steps from w with the sharpness-aware gradient. With
    rho = 0 the loss is still recomputed: DFGP's second pass differs from its first by the
    ascended mixing weights even where the weights stay (EnnengYang/DFGP
    main_dfgp_cifar100.py:161-169).
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([cast(Tensor, p.grad).norm() for p in params]))
        saved = [p.detach().clone() for p in params]
        for p in params:
            assert p.grad is not None  # params: those with a gradient
            p.add_(p.grad, alpha=rho / (float(norm) + 1e-12))
            p.grad = None
    loss_at_current_batch().backward()
    with torch.no_grad():  # copied back, not shifted back: (w + e) - e need not be w in floats
        for p, original in zip(params, saved, strict=True):
            p.copy_(original)
