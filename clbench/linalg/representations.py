"""Layer input capture: the representation matrices of docs/methods.md, taken with forward hooks.

A layer's representation matrix R is d x n with one column per input vector the layer
saw: d = in_features for Linear, d = C_in * kh * kw for Conv2d with rows in the
(C, kh, kw) order of ``weight.view(out, -1)`` and one column per patch, taken with the
layer's own kernel size, stride, padding and dilation (docs/methods.md, Notation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from clbench.linalg.decompose import check_dtype

HEADS_ATTRIBUTE = "heads"


def representation_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Return the Linear and Conv2d modules of ``model`` by qualified name, in module order.

    Task heads are excluded: by the convention of this project they live under the
    attribute ``heads``, so every module named ``heads`` or ``heads.<...>`` is skipped.
    """
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
        and name != HEADS_ATTRIBUTE
        and not name.startswith(HEADS_ATTRIBUTE + ".")
    }


def _check_layer(module: nn.Module) -> None:
    """Reject layers whose inputs cannot be written as R with W R = output (minus bias)."""
    if isinstance(module, nn.Linear):
        return
    if not isinstance(module, nn.Conv2d):
        raise ValueError(f"expected nn.Linear or nn.Conv2d, got {type(module).__name__}")
    if module.groups != 1:
        raise ValueError(f"Conv2d with groups={module.groups} is not supported; only groups=1")
    if isinstance(module.padding, str):
        raise ValueError(
            f"Conv2d with padding={module.padding!r} is not supported; give padding as ints"
        )
    if module.padding_mode != "zeros":
        raise ValueError(
            f"Conv2d with padding_mode={module.padding_mode!r} is not supported; only 'zeros'"
        )


def input_dim(module: nn.Module) -> int:
    """Return d, the number of rows of the layer's representation matrix."""
    _check_layer(module)
    if isinstance(module, nn.Linear):
        return module.in_features
    conv = cast(nn.Conv2d, module)  # checked by _check_layer
    kh, kw = conv.kernel_size
    return conv.in_channels * kh * kw


def layer_input_matrix(module: nn.Module, x: Tensor) -> Tensor:
    """Return the d x n representation matrix of input ``x`` to a Linear or Conv2d layer.

    Linear: x is (N, ..., in_features); each input vector is a column (n = all leading
    entries). Conv2d: x is (N, C, H, W); each patch of each sample is a column, samples
    outer and patch positions (row-major) inner, so ``weight.view(out, -1) @ R`` equals
    the conv output without bias, reshaped (docs/methods.md, Notation).
    """
    d = input_dim(module)
    if isinstance(module, nn.Linear):
        if x.dim() < 2 or x.shape[-1] != d:
            raise ValueError(f"Linear input must be (N, ..., {d}), got shape {tuple(x.shape)}")
        return x.reshape(-1, d).T
    conv = cast(nn.Conv2d, module)  # checked by input_dim
    if x.dim() != 4 or x.shape[1] != conv.in_channels:
        raise ValueError(
            f"Conv2d input must be (N, {conv.in_channels}, H, W), got shape {tuple(x.shape)}"
        )
    patches = F.unfold(
        x,
        kernel_size=conv.kernel_size,
        dilation=conv.dilation,
        padding=cast(tuple[int, ...], conv.padding),  # _check_layer rejects string padding
        stride=conv.stride,
    )
    return patches.transpose(0, 1).reshape(d, -1)


def _register(
    layers: Mapping[str, nn.Module], on_input: Callable[[str, nn.Module, Tensor], None]
) -> list[RemovableHandle]:
    """Register one forward hook per layer that passes its first input to ``on_input``.

    All layers are validated before any hook is registered, so a bad layer leaves none behind.
    """
    for module in layers.values():
        _check_layer(module)

    def make_hook(name: str) -> Callable[[nn.Module, tuple[Tensor, ...], object], None]:
        def hook(module: nn.Module, args: tuple[Tensor, ...], _output: object) -> None:
            with torch.no_grad():
                on_input(name, module, args[0].detach())

        return hook

    return [module.register_forward_hook(make_hook(name)) for name, module in layers.items()]


def capture_representations(
    model: nn.Module,
    run_forward: Callable[[], object],
    layers: Mapping[str, nn.Module],
    sample_caps: Mapping[str, int] | None = None,
) -> dict[str, Tensor]:
    """Run ``run_forward()`` once under no_grad and return each layer's d x n matrix R.

    R is built from the first ``sample_caps[name]`` samples the layer saw (for a conv:
    all patches of those samples); layers absent from ``sample_caps`` use every sample.
    If ``run_forward`` calls the model several times, samples are taken in call order.
    The caller chooses the model's mode (GPM uses eval mode, docs/methods.md). Hooks are
    removed even when ``run_forward`` raises. ``model`` is the network the layers
    belong to; layers not among its modules are rejected.
    """
    caps = dict(sample_caps or {})
    members = {id(m) for m in model.modules()}
    for name, module in layers.items():
        if id(module) not in members:
            raise ValueError(f"layer {name!r} is not a module of the given model")
    for name, cap in caps.items():
        if name not in layers:
            raise ValueError(f"sample_caps names {name!r}, which is not among the layers given")
        if not isinstance(cap, int) or cap < 1:
            raise ValueError(f"sample_caps[{name!r}] = {cap!r}; expected an int >= 1")
    chunks: dict[str, list[Tensor]] = {name: [] for name in layers}
    seen = dict.fromkeys(layers, 0)

    def on_input(name: str, module: nn.Module, x: Tensor) -> None:
        take = x.shape[0] if name not in caps else min(x.shape[0], caps[name] - seen[name])
        if take > 0:
            chunks[name].append(layer_input_matrix(module, x[:take]))
            seen[name] += take

    handles = _register(layers, on_input)
    try:
        with torch.no_grad():
            run_forward()
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name, parts in chunks.items() if not parts]
    if missing:
        raise ValueError(f"layers saw no input during run_forward: {', '.join(missing)}")
    return {name: torch.cat(parts, dim=1) for name, parts in chunks.items()}


class GramAccumulator:
    """Accumulate each layer's Gram matrix G = sum over columns x x^T across forward calls.

    Used by NESS (docs/methods.md, NESS step 2): G of the layer inputs over the data of all past
    tasks, without holding the inputs. Use as a context manager; hooks are active inside
    the ``with`` block and removed on exit. ``grams[name]`` is d x d in ``dtype`` on the
    layer's device and ``counts[name]`` the number of columns accumulated. ``layers``
    defaults to :func:`representation_layers` of ``model``. Forward passes run by the
    caller should use ``torch.no_grad()`` (the hooks themselves never record gradients).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Mapping[str, nn.Module] | None = None,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        check_dtype(dtype)
        self.layers = dict(representation_layers(model) if layers is None else layers)
        self.grams = {
            name: torch.zeros(
                input_dim(m), input_dim(m), dtype=dtype, device=cast(Tensor, m.weight).device
            )
            for name, m in self.layers.items()
        }
        self.counts = dict.fromkeys(self.layers, 0)
        self._handles: list[RemovableHandle] = []

    def _on_input(self, name: str, module: nn.Module, x: Tensor) -> None:
        """Add the columns of one input batch to the layer's Gram matrix."""
        G = self.grams[name]
        X = layer_input_matrix(module, x).to(dtype=G.dtype, device=G.device)
        G.addmm_(X, X.T)
        self.counts[name] += X.shape[1]

    def __enter__(self) -> GramAccumulator:
        if self._handles:
            raise RuntimeError("GramAccumulator is already active")
        self._handles = _register(self.layers, self._on_input)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
