"""Low-rank adapters confined to a fixed subspace: effective weight W + A B^T (docs/methods.md,
NESS).

The adapter is a `torch.nn.utils.parametrize` parametrization of the layer's weight, so the layer
stays a `Linear`/`Conv2d` (forward hooks, representation capture and the optimizer see it as
usual). W and the basis B (d x r, columns orthonormal) are frozen; A (out x r) starts at zero and
is trained. For a conv layer, A B^T is reshaped to the kernel, in the (C, kh, kw) order of
`weight.view(out, -1)`.

An adapted `Linear` computes W x + A (B^T x) instead of forming W + A B^T whenever that takes
fewer multiplications (rows x (d + out) < out x d: small batches), the same function in fewer
operations (docs/performance.md, "Where a step's time goes").
"""

from __future__ import annotations

from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from clbench.strategies.layer_class import mix_in, mix_out
from clbench.strategies.projection import weight_parametrizations


class LowRankUpdate(nn.Module):
    """The parametrization W -> W + A B^T."""

    basis: Tensor  # a buffer

    def __init__(self, basis: Tensor, out_features: int) -> None:
        super().__init__()
        self.register_buffer("basis", basis)
        self.A = nn.Parameter(basis.new_zeros(out_features, basis.shape[1]))

    def forward(self, weight: Tensor) -> Tensor:
        return weight + (self.A @ self.basis.T).view_as(weight)


class FactorizedLinear:
    """Mixed into an adapted Linear's class: the forward in factored form when it is cheaper."""

    # Attributes of the parametrized Linear this class is mixed into (by mix_in).
    parametrizations: nn.ModuleDict
    bias: Tensor | None

    def forward(self, x: Tensor) -> Tensor:
        weight = cast(parametrize.ParametrizationList, self.parametrizations.weight)
        base = weight.original
        update = cast(LowRankUpdate, weight[0])
        out, d = base.shape
        if (x.numel() // d) * (d + out) >= out * d:
            return super().forward(x)  # type: ignore[misc]  # mixed into a Linear by mix_in
        return F.linear(x, base, self.bias) + (x @ update.basis) @ update.A.T


def add_adapter(layer: nn.Module, basis: Tensor) -> LowRankUpdate:
    """Wrap `layer` (Linear or Conv2d) with a trainable A and frozen W and B; returns the update."""
    weight = cast(Tensor, layer.weight)
    update = LowRankUpdate(basis.to(dtype=weight.dtype, device=weight.device), weight.shape[0])
    parametrize.register_parametrization(layer, "weight", update)
    # torch types module attributes as Tensor | Module; kept as written (a tests/mutants.py target)
    layer.parametrizations.weight.original.requires_grad_(False)  # type: ignore[union-attr]
    if isinstance(layer, nn.Linear):
        mix_in(layer, FactorizedLinear)
    return update


def adapter_of(layer: nn.Module) -> LowRankUpdate | None:
    """The adapter of `layer`, or None."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    return next(m for m in weight_parametrizations(layer) if isinstance(m, LowRankUpdate))


def merge_adapters(model: nn.Module) -> None:
    """Fold every adapter into its layer's weight (W <- W + A B^T) and unwrap the layer."""
    for module in model.modules():
        if adapter_of(module) is not None:
            mix_out(module, FactorizedLinear)  # back to torch's parametrized class
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
