"""Low-rank adapters confined to a fixed subspace: effective weight W + A B^T (METHODS.md, NESS).

The adapter is a `torch.nn.utils.parametrize` parametrization of the layer's weight, so the layer
stays a `Linear`/`Conv2d` (forward hooks, representation capture and the optimizer see it as
usual). W and the basis B (d x r, columns orthonormal) are frozen; A (out x r) starts at zero and
is trained. For a conv layer, A B^T is reshaped to the kernel, in the (C, kh, kw) order of
`weight.view(out, -1)`.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils import parametrize


class LowRankUpdate(nn.Module):
    """The parametrization W -> W + A B^T."""

    def __init__(self, basis: Tensor, out_features: int) -> None:
        super().__init__()
        self.register_buffer("basis", basis)
        self.A = nn.Parameter(basis.new_zeros(out_features, basis.shape[1]))

    def forward(self, weight: Tensor) -> Tensor:
        return weight + (self.A @ self.basis.T).view_as(weight)


def add_adapter(layer: nn.Module, basis: Tensor) -> LowRankUpdate:
    """Wrap `layer` (Linear or Conv2d) with a trainable A and frozen W and B; returns the update."""
    weight = layer.weight
    update = LowRankUpdate(basis.to(dtype=weight.dtype, device=weight.device), weight.shape[0])
    parametrize.register_parametrization(layer, "weight", update)
    layer.parametrizations.weight.original.requires_grad_(False)
    return update


def adapter_of(layer: nn.Module) -> LowRankUpdate | None:
    """The adapter of `layer`, or None."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    return next(m for m in layer.parametrizations.weight if isinstance(m, LowRankUpdate))


def merge_adapters(model: nn.Module) -> None:
    """Fold every adapter into its layer's weight (W <- W + A B^T) and unwrap the layer."""
    for module in model.modules():
        if adapter_of(module) is not None:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
