"""Shared linear algebra: the SVD utility, layer representations and the basis rules."""

from clbench.linalg.basis import (
    Projection,
    adam_nscl_null_space,
    energy_rank,
    gpm_extend_basis,
    gpm_initial_basis,
    ness_null_space,
    ness_null_space_from_inputs,
    project_out,
    sgp_extend_basis,
    sgp_importance,
    sgp_initial_basis,
    trgp_extend_basis,
)
from clbench.linalg.decompose import (
    GRAM_RATIO,
    choose_route,
    gram_eigh,
    gram_matrix,
    left_singular,
    principal_angles,
)
from clbench.linalg.representations import (
    GramAccumulator,
    capture_representations,
    gpm_sample_caps,
    input_dim,
    layer_input_matrix,
    representation_layers,
)

__all__ = [
    "GRAM_RATIO",
    "adam_nscl_null_space",
    "GramAccumulator",
    "capture_representations",
    "choose_route",
    "energy_rank",
    "gpm_extend_basis",
    "gpm_initial_basis",
    "gpm_sample_caps",
    "gram_eigh",
    "gram_matrix",
    "input_dim",
    "layer_input_matrix",
    "left_singular",
    "ness_null_space",
    "ness_null_space_from_inputs",
    "principal_angles",
    "Projection",
    "project_out",
    "representation_layers",
    "sgp_extend_basis",
    "sgp_importance",
    "sgp_initial_basis",
    "trgp_extend_basis",
]
