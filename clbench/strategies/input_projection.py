"""Gradient projection inside a Linear layer's backward, on the input side.

A Linear layer's weight gradient is g = delta^T X (delta: gradients of its outputs, X: its inputs,
one row per sample), so the projection of the family (docs/methods.md, GPM and SGP, Training) is
    g (I - M diag(s) M^T) = delta^T (X - X M diag(s) M^T).
After backward it costs 2 out d k multiplications per layer and step, whatever the batch; on the
input side, 2 rows d k. `ProjectedWeightGrad` computes the layer's backward with the cheaper of
the two (the input side when the batch has fewer rows than the layer has outputs, as with
PMNIST's batches of 10 and 100-unit layers), so the weight gradient comes out already projected:
the same value as projecting after backward, up to rounding, for every backward through the
layer (docs/performance.md, "Where a step's time goes").
"""

from __future__ import annotations

from typing import TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from clbench.linalg import Projection
from clbench.strategies.layer_class import mix_in, mix_out


class ProjectedWeightGrad(torch.autograd.Function):
    """`F.linear(x, weight, bias)` whose weight gradient comes out projected by `projection`."""

    @staticmethod
    def forward(ctx, x, weight, bias, projection: Projection):
        ctx.save_for_backward(x, weight)
        ctx.projection = projection
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        delta = grad_output if grad_output.dim() == 2 else grad_output.flatten(0, -2)
        inputs = x if x.dim() == 2 else x.flatten(0, -2)
        if len(inputs) < len(weight):
            grad_weight = delta.T @ ctx.projection.apply(inputs)
        else:
            grad_weight = ctx.projection.apply(delta.T @ inputs)
        grad_x = grad_output @ weight if ctx.needs_input_grad[0] else None
        grad_bias = delta.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None


class InputProjectedLinear:
    """Mixed into a Linear layer: while its weight trains, its backward projects the weight
    gradient with the layer's `projection` (`ProjectedWeightGrad`)."""

    projection: Projection
    # Attributes of the Linear this class is mixed into (by mix_in).
    weight: Tensor
    bias: Tensor | None

    def forward(self, x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and self.weight.requires_grad):
            return super().forward(x)  # type: ignore[misc]  # mixed into a Linear by mix_in
        return ProjectedWeightGrad.apply(x, self.weight, self.bias, self.projection)


def projects_inputs(layer: nn.Module) -> TypeGuard[nn.Linear]:
    """Whether `layer` can project on the input side: a Linear layer with a plain weight (not a
    parametrization, whose own gradient is not delta^T X)."""
    return isinstance(layer, nn.Linear) and not parametrize.is_parametrized(layer, "weight")


def project_inputs(layer: nn.Linear, projection: Projection) -> None:
    """Make every backward through `layer` project its weight gradient with `projection`."""
    mix_in(layer, InputProjectedLinear)
    cast(InputProjectedLinear, layer).projection = projection


def stop_projecting_inputs(layer: nn.Module) -> None:
    """Undo `project_inputs` (no-op for other layers)."""
    if isinstance(layer, InputProjectedLinear):
        del layer.projection
        mix_out(layer, InputProjectedLinear)
