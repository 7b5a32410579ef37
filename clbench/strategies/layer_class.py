"""Giving one layer object extra behaviour by mixing a class into it, and taking it away again.

The layer keeps its identity, parameters, hooks, state_dict keys and `isinstance` relations (a
mixed-in `Linear` is still a `Linear`), so optimizers, forward hooks and representation capture
see it as before. Used by NESS's factored adapters and the projection family's input-side
projection.
"""

from __future__ import annotations

from functools import cache

from torch import nn


@cache
def _mixed(mixin: type, base: type) -> type:
    return type(f"{mixin.__name__}{base.__name__}", (mixin, base), {})


def mix_in(layer: nn.Module, mixin: type) -> None:
    """Put `mixin`'s methods ahead of `layer`'s own class (no-op if already mixed in)."""
    if not isinstance(layer, mixin):
        base: type = type(layer)  # as plain `type`: mypy reads type[Module] as not Hashable
        layer.__class__ = _mixed(mixin, base)


def mix_out(layer: nn.Module, mixin: type) -> None:
    """Undo `mix_in` (no-op if `mixin` is not mixed in)."""
    if isinstance(layer, mixin):
        layer.__class__ = type(layer).__bases__[1]
