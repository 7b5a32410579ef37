"""Shared linear algebra: the SVD utility, layer representations and subspace helpers that
several methods' basis rules use (no method's own rule lives here)."""

from clbench.linalg.basis import (
    NEGLIGIBLE_ENERGY,
    Projection,
    as_basis,
    check_threshold,
    energy_rank,
    leading_directions,
    residual_directions,
    resolved,
    steps_below,
)
from clbench.linalg.decompose import (
    GRAM_RATIO,
    as_matrix,
    choose_route,
    gram_eigh,
    gram_matrix,
    left_singular,
    principal_angles,
)
from clbench.linalg.representations import (
    GramAccumulator,
    capture_representations,
    input_dim,
    layer_input_matrix,
    representation_layers,
)

__all__ = [
    "GRAM_RATIO",
    "NEGLIGIBLE_ENERGY",
    "GramAccumulator",
    "Projection",
    "as_basis",
    "as_matrix",
    "capture_representations",
    "check_threshold",
    "choose_route",
    "energy_rank",
    "gram_eigh",
    "gram_matrix",
    "input_dim",
    "layer_input_matrix",
    "leading_directions",
    "left_singular",
    "principal_angles",
    "representation_layers",
    "residual_directions",
    "resolved",
    "steps_below",
]
