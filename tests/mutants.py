"""Mutation testing of the rules of the projection and null-space methods.

Each mutant breaks one rule of docs/methods.md in one place: a flipped comparison, an off-by-one,
an ignored argument, a sign flip, a dropped clamp or normalisation, the largest instead of the
smallest, a removed zeroing. For every mutant this script copies clbench/, baselines/, tests/ and
pyproject.toml into a fresh temporary directory, replaces the mutant's original snippet (which must
occur exactly once in its file, so that the list stays in sync with the code) there, and runs

    python -m pytest -x -q -p no:cacheprovider -m "not slow" <the mutant's tests>

in that directory with PYTHONPATH=<the copy> and a fresh HOME. The copy's clbench and baselines
import ahead of the editable install (PYTHONPATH precedes the install's import hook on sys.path);
before any mutant runs, a sentinel that raises at import checks this, and the unmutated copy must
pass every selected test (the baseline). The checkout itself is never written to.

A mutant is `killed` when its tests fail, `survived` when they pass; a survivor whose `reason`
explains why it cannot change a result is counted `equivalent`. `error`: the snippet is not found
exactly once, or pytest could not run the tests (exit status 3-5); `timeout`: pytest ran past
--timeout.

    python tests/mutants.py --list
    python tests/mutants.py --jobs 2 --report mutants.json
    python tests/mutants.py --only trgp_threshold_ge --only sam_sign
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("clbench", "baselines", "tests", "pyproject.toml")
SENTINEL = "mutants.py sentinel: the copy was imported"

# --- tests, fast ones, chosen per mutant (tests/test_rules.py first: it fails fastest) -------

RULES = "tests/test_rules.py"
BASIS = "tests/test_linalg_basis.py"
GPCNS = "tests/test_gpcns.py"
ADAM = "tests/test_adam_nscl.py"
PROJECTION = tuple(
    f"tests/test_projection.py::{name}"
    for name in (
        "test_gpm_gradients_have_no_component_in_the_kept_basis",
        "test_nothing_changes_on_task_0",
        "test_sgp_scales_the_component_along_each_basis_vector_by_one_minus_lambda",
        "test_sgp_with_all_importances_one_is_gpm",
        "test_a_single_shared_head_is_projected_task_heads_are_not",
        "test_basis_sizes_and_bytes_follow_the_energy_rule_by_hand",
        "test_thresholds_per_layer_with_increment",
        "test_projection_inside_backward_equals_projection_after_backward",
        "test_gpm_projects_linear_layers_in_backward_during_a_task_only",
    )
)
TRGP = ("tests/test_trgp.py::test_trgp_with_no_selected_task_is_gpm",)
TRGP_MEMORY_WEIGHTS = (
    "tests/test_faithfulness.py::test_trgp_grows_its_memory_through_the_chosen_weights",
)
DFGP = (
    "tests/test_faithfulness.py::"
    "test_dfgp_mixing_weights_get_their_gradient_through_the_mixed_inputs_only",
)
NESS = tuple(
    f"tests/test_ness.py::{name}"
    for name in (
        "test_merged_and_unmerged_models_give_the_same_outputs",
        "test_adapted_linear_computes_w_plus_a_b_transpose_in_either_form",
        "test_adapter_freezes_w_and_b_and_starts_from_zero",
        "test_null_space_rank_follows_eps1_by_hand",
        "test_negative_float32_eigenvalues_are_clamped_not_nan",
        "test_full_rank_layers_get_no_adapter",
        "test_sam_gradient_is_the_gradient_at_the_perturbed_point",
        "test_auto_takes_the_direct_route_where_the_null_space_is_large",
    )
)

LINALG = (RULES, BASIS, GPCNS, *NESS[3:5])
STRATEGY_PROJECTION = (RULES, *PROJECTION, *TRGP)


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    reason: str = ""  # why surviving is expected (equivalent, or unable to change a result)


def m(name, file, original, replacement, tests, reason=""):
    return Mutant(name, file, original, replacement, tuple(tests), reason)


BASIS_PY = "clbench/linalg/basis.py"
GPM_PY = "baselines/gpm.py"
PROJECTION_PY = "clbench/strategies/projection.py"
INPUT_PY = "clbench/strategies/input_projection.py"
TRGP_PY = "baselines/trgp.py"
SGP_PY = "baselines/sgp.py"
DFGP_PY = "baselines/dfgp.py"
SAM_PY = "clbench/strategies/sam.py"
GPCNS_PY = "baselines/gpcns.py"
ADAM_PY = "baselines/adam_nscl.py"
NESS_PY = "baselines/ness/__init__.py"
ADAPTERS_PY = "baselines/ness/adapters.py"

MUTANTS: list[Mutant] = [
    # --- GPM's rule and the shared helpers (clbench/linalg/basis.py, baselines/gpm.py) --------
    m(
        "energy_rank_le",
        BASIS_PY,
        "return int((torch.cumsum(energy, 0) / total < threshold).sum())",
        "return int((torch.cumsum(energy, 0) / total <= threshold).sum())",
        LINALG,
    ),
    m(
        "steps_below_le",
        BASIS_PY,
        "return int((start + before < target).sum())",
        "return int((start + before <= target).sum())",
        LINALG,
    ),
    m(
        "steps_below_after_adding",
        BASIS_PY,
        "torch.cumsum(increments, 0)])[: len(increments)]",
        "torch.cumsum(increments, 0)])[1 : len(increments) + 1]",
        LINALG,
    ),
    m(
        "gpm_covered_energy_ignored",
        GPM_PY,
        "r = steps_below((total - residual_energy) / total, s_hat**2 / total, threshold)",
        "r = steps_below(total * 0, s_hat**2 / total, threshold)",
        LINALG,
    ),
    m(
        "gpm_round_off_directions_kept",
        BASIS_PY,
        "kept = int((s_hat.square() > NEGLIGIBLE_ENERGY * R.square().sum()).sum())",
        "kept = len(s_hat)",
        LINALG,
    ),
    # --- SGP's rules (baselines/sgp.py) -------------------------------------------------------
    m(
        "sgp_importance_alpha_ignored",
        SGP_PY,
        "return (alpha + 1) * x / (alpha * x + top)",
        "return 11 * x / (10 * x + top)",
        LINALG,
    ),
    m(
        "sgp_importance_sum_not_max",
        SGP_PY,
        "    top = x.max()\n",
        "    top = x.sum()\n",
        LINALG,
    ),
    m(
        "sgp_initial_alpha_ignored",
        SGP_PY,
        "return U_r, importance(s_r, alpha)",
        "return U_r, importance(s_r, 10.0)",
        LINALG,
    ),
    m(
        "sgp_extend_alpha_ignored",
        SGP_PY,
        "weights = importance(torch.cat([strengths, s_new]), alpha)",
        "weights = importance(torch.cat([strengths, s_new]), 10.0)",
        LINALG,
    ),
    m(
        "sgp_extend_separate_maxima",
        SGP_PY,
        "weights = importance(torch.cat([strengths, s_new]), alpha)",
        "weights = torch.cat([importance(strengths, alpha), importance(s_new, alpha)])",
        LINALG,
    ),
    m(
        "sgp_strengths_squared",
        SGP_PY,
        "strengths = torch.linalg.vector_norm(M.T @ R, dim=1)",
        "strengths = (M.T @ R).square().sum(dim=1)",
        LINALG,
    ),
    m(
        "sgp_previous_importance_dropped",
        SGP_PY,
        "weights[:k] = (weights[:k] + lam).clamp(0, 1)",
        "weights[:k] = weights[:k].clamp(0, 1)",
        LINALG,
    ),
    m(
        "sgp_clip_dropped",
        SGP_PY,
        "weights[:k] = (weights[:k] + lam).clamp(0, 1)",
        "weights[:k] = weights[:k] + lam",
        LINALG,
    ),
    # --- TRGP's basis rule (baselines/trgp.py) ------------------------------------------------
    m(
        "trgp_rank_ascending",
        TRGP_PY,
        "order = torch.sort(values, descending=True, stable=True).indices",
        "order = torch.sort(values, descending=False, stable=True).indices",
        LINALG,
    ),
    m(
        "trgp_old_energy_not_squared",
        TRGP_PY,
        "delta = (M.T @ R).square().sum(dim=1)",
        "delta = (M.T @ R).square().sum(dim=1).sqrt()",
        LINALG,
    ),
    m(
        "trgp_target_without_threshold",
        TRGP_PY,
        "values[order], threshold * R.square().sum())",
        "values[order], R.square().sum())",
        LINALG,
    ),
    m(
        "trgp_skip_first_new_ignored",
        TRGP_PY,
        "new = chosen[chosen > k if skip_first_new else chosen >= k] - k",
        "new = chosen[chosen >= k] - k",
        LINALG,
    ),
    m(
        "trgp_inclusive_drops_first_new",
        TRGP_PY,
        "new = chosen[chosen > k if skip_first_new else chosen >= k] - k",
        "new = chosen[chosen > k] - k",
        LINALG,
    ),
    m(
        "trgp_task0_running_sum",
        TRGP_PY,
        "    if M.shape[1] == 0:\n        S = initial_basis(R, threshold)",
        "    if M.shape[1] < 0:\n        S = initial_basis(R, threshold)",
        LINALG,
    ),
    # --- GPCNS's rank, gradient space and merge (baselines/gpcns.py) --------------------------
    m(
        "cumulative_rank_lt",
        GPCNS_PY,
        "return int((torch.cumsum(values, 0) <= threshold * total).sum())",
        "return int((torch.cumsum(values, 0) < threshold * total).sum())",
        LINALG,
    ),
    m(
        "gpcns_gradient_space_round_off_kept",
        GPCNS_PY,
        "V, s = resolved(*left_singular(rows.T))",
        "V, s = left_singular(rows.T)",
        LINALG,
    ),
    m(
        "gpcns_merge_squared_ignored",
        GPCNS_PY,
        "r = cumulative_rank(s.square() if squared else s, threshold)",
        "r = cumulative_rank(s, threshold)",
        LINALG,
    ),
    m(
        "gpcns_merge_coefficient_ignored",
        GPCNS_PY,
        "else importance(s[:r], coefficient)",
        "else importance(s[:r], 5.0)",
        LINALG,
    ),
    m(
        "gpcns_merge_never_all_ones",
        GPCNS_PY,
        "torch.ones_like(s[:r]) if coefficient is None else importance(s[:r], coefficient)",
        "importance(s[:r], 5.0 if coefficient is None else coefficient)",
        LINALG,
    ),
    # --- Adam-NSCL's null space (baselines/adam_nscl.py) --------------------------------------
    m(
        "adam_nscl_lt",
        ADAM_PY,
        "null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)",
        "null = eigenvalues < threshold * torch.maximum(eigenvalues[-1], floor)",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_largest_reference",
        ADAM_PY,
        "null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)",
        "null = eigenvalues <= threshold * torch.maximum(eigenvalues[0], floor)",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_no_floor",
        ADAM_PY,
        "null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)",
        "null = eigenvalues <= threshold * eigenvalues[-1]",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_threshold_ignored",
        ADAM_PY,
        "null = eigenvalues <= threshold * torch.maximum(eigenvalues[-1], floor)",
        "null = eigenvalues <= 10 * torch.maximum(eigenvalues[-1], floor)",
        (RULES, ADAM),
    ),
    # --- basis.py: the shared projection ------------------------------------------------------
    m(
        "projection_sign",
        BASIS_PY,
        "return torch.addmm(rows, rows @ self.weighted, self.basis.T, alpha=-1)",
        "return torch.addmm(rows, rows @ self.weighted, self.basis.T, alpha=1)",
        (RULES, BASIS, *PROJECTION),
    ),
    m(
        "projection_scale_ignored",
        BASIS_PY,
        "return cls(basis, basis if scale is None else basis * scale.to(like))",
        "return cls(basis, basis)",
        (RULES, BASIS, *PROJECTION),
    ),
    m(
        "projection_keeps_lambda_instead",
        BASIS_PY,
        "basis if scale is None else basis * scale.to(like))",
        "basis if scale is None else basis * (1 - scale.to(like)))",
        (RULES, BASIS, *PROJECTION),
    ),
    # --- clbench/strategies/projection.py -----------------------------------------------------
    m(
        "thresholds_not_capped",
        PROJECTION_PY,
        "min(v + increment * task, 1.0)",
        "v + increment * task",
        STRATEGY_PROJECTION,
    ),
    m(
        "thresholds_off_by_one_task",
        PROJECTION_PY,
        "min(v + increment * task, 1.0)",
        "min(v + increment * (task + 1), 1.0)",
        STRATEGY_PROJECTION,
    ),
    m(
        "shared_head_rule",
        PROJECTION_PY,
        "if heads is not None and len(heads) == 1:",
        "if heads is not None and len(heads) >= 1:",
        STRATEGY_PROJECTION,
    ),
    m(
        "projection_skips_task_1",
        PROJECTION_PY,
        "        if self.task_index(strategy) == 0:\n            return\n"
        "        targets = self.targets",
        "        if self.task_index(strategy) <= 1:\n            return\n"
        "        targets = self.targets",
        STRATEGY_PROJECTION,
    ),
    m(
        "batchnorm_not_zeroed",
        PROJECTION_PY,
        "param.grad.zero_()",
        "pass",
        STRATEGY_PROJECTION,
    ),
    m(
        "batchnorm_option_ignored",
        PROJECTION_PY,
        'frozen = frozen_after_first_task(model) if self.params.batchnorm == "freeze" else []',
        "frozen = frozen_after_first_task(model)",
        STRATEGY_PROJECTION,
    ),
    m(
        "frozen_includes_head_vectors",
        PROJECTION_PY,
        'if param.dim() == 1 and not name.startswith("heads.")',
        "if param.dim() == 1",
        STRATEGY_PROJECTION,
        reason="equivalent for every model of the zoo: task heads are bias-free Linear layers, "
        "so no head parameter is one-dimensional and the name test never excludes anything",
    ),
    m(
        "project_in_backward_ignored",
        PROJECTION_PY,
        "if self.task_index(strategy) == 0 or not self.project_in_backward:",
        "if self.task_index(strategy) == 0:",
        STRATEGY_PROJECTION,
    ),
    # --- clbench/strategies/input_projection.py -----------------------------------------------
    m(
        "input_side_not_projected",
        INPUT_PY,
        "grad_weight = delta.T @ ctx.projection.apply(inputs)",
        "grad_weight = delta.T @ inputs",
        (RULES, *PROJECTION),
    ),
    m(
        "weight_side_not_projected",
        INPUT_PY,
        "grad_weight = ctx.projection.apply(delta.T @ inputs)",
        "grad_weight = delta.T @ inputs",
        (RULES, *PROJECTION),
    ),
    m(
        "input_side_choice_flipped",
        INPUT_PY,
        "if len(inputs) < len(weight):",
        "if len(inputs) > len(weight):",
        (RULES, *PROJECTION),
        reason="equivalent: delta^T (X - X M diag(s) M^T) and (delta^T X)(I - M diag(s) M^T) are "
        "the same matrix; the choice only sets which side is cheaper (values agree to rounding)",
    ),
    # --- baselines/trgp.py --------------------------------------------------------------------
    m(
        "trgp_candidates_weakest",
        TRGP_PY,
        "return sorted(norms, key=norms.get, reverse=True)[: self.params.max_selected]",
        "return sorted(norms, key=norms.get, reverse=False)[: self.params.max_selected]",
        (RULES, *TRGP),
    ),
    m(
        "trgp_max_selected_ignored",
        TRGP_PY,
        "return sorted(norms, key=norms.get, reverse=True)[: self.params.max_selected]",
        "return sorted(norms, key=norms.get, reverse=True)[:2]",
        (RULES, *TRGP),
    ),
    m(
        "trgp_every_task_in_region_a_candidate",
        TRGP_PY,
        "chosen = [j for j in self.candidates(task, norms) if norms[j] > limit]",
        "chosen = [j for j in norms if norms[j] > limit]",
        (RULES, *TRGP),
    ),
    m(
        "trgp_previous_rule_at_every_later_task",
        TRGP_PY,
        'if task == 2 and self.params.task2_selection == "previous":',
        'if task >= 2 and self.params.task2_selection == "previous":',
        (RULES, *TRGP),
    ),
    m(
        "trgp_task2_selection_swapped",
        TRGP_PY,
        'if task == 2 and self.params.task2_selection == "previous":',
        'if task == 2 and self.params.task2_selection == "top":',
        (RULES, *TRGP),
    ),
    m(
        "trgp_previous_is_task_0",
        TRGP_PY,
        "            return [1]\n",
        "            return [0]\n",
        (RULES, *TRGP),
    ),
    m(
        "trgp_threshold_ge",
        TRGP_PY,
        "if norms[j] > limit]",
        "if norms[j] >= limit]",
        (RULES, *TRGP),
    ),
    m(
        "trgp_threshold_ignored",
        TRGP_PY,
        "limit = self.params.trust_threshold * float(torch.linalg.matrix_norm(G))",
        "limit = 0.5 * float(torch.linalg.matrix_norm(G))",
        (RULES, *TRGP),
    ),
    m(
        "trgp_threshold_on_squared_norm",
        TRGP_PY,
        "limit = self.params.trust_threshold * float(torch.linalg.matrix_norm(G))",
        "limit = self.params.trust_threshold * float(torch.linalg.matrix_norm(G)) ** 2",
        (RULES, *TRGP),
    ),
    m(
        "trgp_projection_norm_of_complement",
        TRGP_PY,
        "j: float(torch.linalg.matrix_norm(G @ (S := bases[name].to(G)) @ S.T))",
        "j: float(torch.linalg.matrix_norm(G - G @ (S := bases[name].to(G)) @ S.T))",
        (RULES, *TRGP),
    ),
    m(
        "trgp_gating_any",
        TRGP_PY,
        "all(self.selected[g] for g in gates[name])",
        "any(self.selected[g] for g in gates[name])",
        (RULES, *TRGP),
    ),
    m(
        "trgp_gating_option_swapped",
        TRGP_PY,
        'if self.params.gating == "first_layer":',
        'if self.params.gating == "per_layer":',
        (RULES, *TRGP),
    ),
    m(
        "trgp_gate_is_last_layer",
        TRGP_PY,
        "{name: [layers[0]] for name in layers}",
        "{name: [layers[-1]] for name in layers}",
        (RULES, *TRGP),
    ),
    m(
        "trgp_conv2_not_gated_by_conv1",
        TRGP_PY,
        'gates[f"{block_name}.conv2"].append(f"{block_name}.conv1")',
        'gates[f"{block_name}.conv2"].append(layers[0])',
        (RULES, *TRGP),
    ),
    m(
        "trgp_shortcut_scales",
        TRGP_PY,
        "                    gates[name] = None",
        "                    gates[name] = [layers[0]]",
        (RULES, *TRGP),
    ),
    m(
        "trgp_scaled_weight_sign",
        TRGP_PY,
        "out = out + (flat @ S @ (Q - eye) @ S.T).view_as(weight)",
        "out = out + (flat @ S @ (eye - Q) @ S.T).view_as(weight)",
        (RULES, *TRGP),
    ),
    m(
        "trgp_scales_start_at_zero",
        TRGP_PY,
        "nn.Parameter(torch.eye(basis.shape[1]).to(basis))",
        "nn.Parameter(torch.zeros(basis.shape[1], basis.shape[1]).to(basis))",
        (RULES, *TRGP),
    ),
    m(
        "trgp_ranking_flag_inverted",
        TRGP_PY,
        'extend_basis(R, M, eps, self.params.ranking == "reference")',
        'extend_basis(R, M, eps, self.params.ranking == "inclusive")',
        (RULES, *TRGP),
    ),
    m(
        "trgp_old_task_evaluated_with_current_scales",
        TRGP_PY,
        "self._set_active(strategy.model, evaluated if own else None)",
        "self._set_active(strategy.model, self.task_index(strategy) - 1)",
        (RULES, *TRGP),
    ),
    m(
        "trgp_memory_weights_inverted",
        TRGP_PY,
        'if self.params.memory_weights == "plain":',
        'if self.params.memory_weights == "scaled":',
        (RULES, *TRGP_MEMORY_WEIGHTS),
    ),
    # --- baselines/sgp.py ---------------------------------------------------------------------
    m(
        "sgp_memory_alpha_ignored",
        SGP_PY,
        "self.alpha = params.alpha",
        "self.alpha = 10.0",
        (RULES, *PROJECTION),
    ),
    m(
        "sgp_projector_without_importance",
        SGP_PY,
        "return None if found is None else (found[0], self.importance[name])",
        "return None if found is None else (found[0], None)",
        (RULES, *PROJECTION),
    ),
    m(
        "sgp_memory_never_extends",
        SGP_PY,
        "            if name in self.bases:\n",
        "            if False:\n",
        (RULES, *PROJECTION),
    ),
    # --- baselines/dfgp.py and clbench/strategies/sam.py --------------------------------------
    m(
        "dfgp_mixing_swapped",
        DFGP_PY,
        "x_mix = (1 - lam.view(shape)) * x + lam.view(shape) * x[self.perm]",
        "x_mix = lam.view(shape) * x + (1 - lam.view(shape)) * x[self.perm]",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_loss_weights_swapped",
        DFGP_PY,
        "return share * F.cross_entropy(out, y) + (1 - share) * F.cross_entropy(out, y[self.perm])",
        "return (1 - share) * F.cross_entropy(out, y) + share * F.cross_entropy(out, y[self.perm])",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_loss_weights_attached",
        DFGP_PY,
        "share = lam.detach().mean()",
        "share = lam.mean()",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_mixup_weight_ignored",
        DFGP_PY,
        "strategy.loss = strategy.loss + self.params.mixup_weight * self._mixed_loss(",
        "strategy.loss = strategy.loss + self._mixed_loss(",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_initial_lambda_not_clamped",
        DFGP_PY,
        "self.lam = lam.clamp(0, 1).requires_grad_(True)",
        "self.lam = lam.requires_grad_(True)",
        (RULES, *DFGP),
        reason="equivalent: Beta(alpha, alpha) draws already lie in [0, 1]; the clamp only guards "
        "the float conversion, which cannot leave the interval",
    ),
    m(
        "dfgp_data_ascent_descends",
        DFGP_PY,
        "lam = (lam + self.params.data_step * grad / grad.norm()).clamp(0, 1)",
        "lam = (lam - self.params.data_step * grad / grad.norm()).clamp(0, 1)",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_data_ascent_not_normalised",
        DFGP_PY,
        "lam = (lam + self.params.data_step * grad / grad.norm()).clamp(0, 1)",
        "lam = (lam + self.params.data_step * grad).clamp(0, 1)",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_data_ascent_not_clamped",
        DFGP_PY,
        "lam = (lam + self.params.data_step * grad / grad.norm()).clamp(0, 1)",
        "lam = lam + self.params.data_step * grad / grad.norm()",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_data_step_ignored",
        DFGP_PY,
        "lam = (lam + self.params.data_step * grad / grad.norm()).clamp(0, 1)",
        "lam = (lam + 0.05 * grad / grad.norm()).clamp(0, 1)",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_second_pass_original_lambda",
        DFGP_PY,
        "return clean + self.params.mixup_weight * self._mixed_loss(strategy, lam)",
        "return clean + self.params.mixup_weight * self._mixed_loss(strategy, self.lam.detach())",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_rho_ignored",
        DFGP_PY,
        "sam_gradient(strategy.model, self.params.rho, loss_at_perturbed_weights)",
        "sam_gradient(strategy.model, 0.05, loss_at_perturbed_weights)",
        (RULES, *DFGP),
    ),
    m(
        "dfgp_projects_in_backward",
        DFGP_PY,
        "GradientProjection(GPMMemory(params), params, project_in_backward=False)",
        "GradientProjection(GPMMemory(params), params, project_in_backward=True)",
        (RULES, *PROJECTION),
    ),
    m(
        "sam_descends",
        SAM_PY,
        "p.add_(p.grad, alpha=rho / (float(norm) + 1e-12))",
        "p.add_(p.grad, alpha=-rho / (float(norm) + 1e-12))",
        (RULES, *NESS),
    ),
    m(
        "sam_not_normalised",
        SAM_PY,
        "p.add_(p.grad, alpha=rho / (float(norm) + 1e-12))",
        "p.add_(p.grad, alpha=rho)",
        (RULES, *NESS),
    ),
    m(
        "sam_first_gradient_kept",
        SAM_PY,
        "            p.grad = None\n",
        "            pass\n",
        (RULES, *NESS),
    ),
    m(
        "sam_weights_not_restored",
        SAM_PY,
        "p.copy_(original)",
        "pass",
        (RULES, *NESS),
    ),
    m(
        "sam_rho_zero_skips_the_second_pass",
        SAM_PY,
        "if not params:",
        "if not params or rho == 0:",
        (RULES, *NESS),
    ),
    # --- baselines/gpcns.py -------------------------------------------------------------------
    m(
        "gpcns_gradients_not_stacked",
        GPCNS_PY,
        "self.gradients[name] = rows if stacked is None else torch.cat([stacked, rows])",
        "self.gradients[name] = rows",
        (RULES, GPCNS),
    ),
    m(
        "gpcns_coefficient_from_task_0",
        GPCNS_PY,
        "coefficient = None if task == 0 else p.importance_coefficient()",
        "coefficient = p.importance_coefficient()",
        (RULES, GPCNS),
    ),
    m(
        "gpcns_user_coefficient_ignored",
        GPCNS_PY,
        "return REFERENCE_COEFFICIENT[self.base] if self.coefficient is None else self.coefficient",
        "return REFERENCE_COEFFICIENT[self.base]",
        (RULES, GPCNS),
    ),
    m(
        "gpcns_squared_from_task_0",
        GPCNS_PY,
        'return self.base == "trgp" and task > 0',
        'return self.base == "trgp" and task >= 0',
        (RULES, GPCNS),
    ),
    m(
        "gpcns_merge_energy_sigma_ignored",
        GPCNS_PY,
        "if self.merge_energy is not None:",
        'if self.merge_energy == "squared":',
        (RULES, GPCNS),
    ),
    m(
        "gpcns_feature_scale_ignored",
        GPCNS_PY,
        "F = M if scale is None else M * scale",
        "F = M",
        (RULES, GPCNS),
    ),
    # --- baselines/adam_nscl.py ---------------------------------------------------------------
    m(
        "adam_nscl_svd_thres_ignored",
        ADAM_PY,
        "null_space(self.grams[name], self.params.svd_thres)",
        "null_space(self.grams[name], 10.0)",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_factor_one_over_r",
        ADAM_PY,
        "factor = 1 / math.sqrt(r) if self.params.normalize and r > 0 else 1.0",
        "factor = 1 / r if self.params.normalize and r > 0 else 1.0",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_normalize_ignored",
        ADAM_PY,
        "factor = 1 / math.sqrt(r) if self.params.normalize and r > 0 else 1.0",
        "factor = 1 / math.sqrt(r) if r > 0 else 1.0",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_route_choice_flipped",
        ADAM_PY,
        "if r <= range_basis.shape[1]:",
        "if r > range_basis.shape[1]:",
        (RULES, ADAM),
        reason="equivalent: step U U^T and step - step V V^T are the same matrix (U and V "
        "complementary orthonormal bases); the choice only sets which is cheaper",
    ),
    m(
        "adam_nscl_null_route_projects_onto_range",
        ADAM_PY,
        "return (step @ self.null_basis) @ self.null_basis.T * self.factor",
        "return (step - (step @ self.null_basis) @ self.null_basis.T) * self.factor",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_step_not_projected",
        ADAM_PY,
        "weight.copy_(old + step.apply(change).view_as(weight))",
        "weight.copy_(old + change.view_as(weight))",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_batchnorm_not_frozen",
        ADAM_PY,
        "p.grad = None  # the optimizer leaves tensors without a gradient alone",
        "pass",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_batchnorm_option_ignored",
        ADAM_PY,
        'if self.params.batchnorm == "freeze":\n            self.frozen',
        "if True:\n            self.frozen",
        (RULES, ADAM),
    ),
    m(
        "adam_nscl_covariances_not_summed",
        ADAM_PY,
        "self.grams[name] = self.grams[name] + gram if name in self.grams else gram",
        "self.grams[name] = gram",
        (RULES, ADAM),
    ),
    # --- baselines/ness/__init__.py -----------------------------------------------------------
    m(
        "ness_basis_lt",
        NESS_PY,
        "null = sigma <= eps_tol",
        "null = sigma < eps_tol",
        (RULES, *NESS),
    ),
    m(
        "ness_eps1_ignored",
        NESS_PY,
        "eps_tol = eps1 * float(sigma.sum())",
        "eps_tol = 0.001 * float(sigma.sum())",
        (RULES, *NESS),
    ),
    m(
        "ness_basis_largest",
        NESS_PY,
        "basis, complement = U[:, U.shape[1] - r :], U[:, : U.shape[1] - r]",
        "basis, complement = U[:, :r], U[:, r:]",
        (RULES, *NESS),
    ),
    m(
        "ness_previous_head_trains",
        NESS_PY,
        "model.heads[task].requires_grad_(True)",
        "model.heads[task - 1].requires_grad_(True)",
        (RULES, *NESS),
    ),
    m(
        "ness_nothing_frozen",
        NESS_PY,
        "        for p in model.parameters():\n            p.requires_grad_(False)\n",
        "",
        (RULES, *NESS),
    ),
    m(
        "ness_rank_zero_adapter",
        NESS_PY,
        "            if r == 0:\n                continue\n",
        "            if r < 0:\n                continue\n",
        (RULES, *NESS),
    ),
    m(
        "ness_adapters_not_merged",
        NESS_PY,
        "        merge_adapters(model)\n",
        "",
        (RULES, *NESS),
    ),
    m(
        "ness_sam_on_every_task",
        NESS_PY,
        'if not self.adapting and self.params.optimizer == "sam":',
        'if self.params.optimizer == "sam":',
        (RULES, *NESS),
    ),
    m(
        "ness_grams_not_summed",
        NESS_PY,
        "self.grams[name] = self.grams[name] + gram if name in self.grams else gram",
        "self.grams[name] = gram",
        (RULES, *NESS),
    ),
    # --- baselines/ness/adapters.py -----------------------------------------------------------
    m(
        "adapter_sign",
        ADAPTERS_PY,
        "return weight + (self.A @ self.basis.T).view_as(weight)",
        "return weight - (self.A @ self.basis.T).view_as(weight)",
        (RULES, *NESS),
    ),
    m(
        "adapter_a_starts_at_one",
        ADAPTERS_PY,
        "self.A = nn.Parameter(basis.new_zeros(out_features, basis.shape[1]))",
        "self.A = nn.Parameter(basis.new_ones(out_features, basis.shape[1]))",
        (RULES, *NESS),
    ),
    m(
        "adapter_w_trainable",
        ADAPTERS_PY,
        "layer.parametrizations.weight.original.requires_grad_(False)",
        "layer.parametrizations.weight.original.requires_grad_(True)",
        (RULES, *NESS),
    ),
    m(
        "factored_forward_sign",
        ADAPTERS_PY,
        "return F.linear(x, base, self.bias) + (x @ update.basis) @ update.A.T",
        "return F.linear(x, base, self.bias) - (x @ update.basis) @ update.A.T",
        (RULES, *NESS),
    ),
    m(
        "merge_drops_the_adapter",
        ADAPTERS_PY,
        'parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)',
        'parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)',
        (RULES, *NESS),
    ),
]


# --- running --------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    file: str
    result: str  # killed / survived / equivalent / error / timeout
    seconds: float
    reason: str = ""
    detail: str = ""  # the first failing test, or what went wrong


def occurrences(mutant: Mutant) -> int:
    return (ROOT / mutant.file).read_text().count(mutant.original)


def make_copy(workdir: Path) -> Path:
    """A copy of the package sources, the tests and pyproject.toml under `workdir`."""
    copy = workdir / "src"
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            shutil.copy2(source, copy / name)
    return copy


def environment(copy: Path, home: Path, threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), HOME=str(home), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_pytest(copy, tests, options, timeout) -> tuple[int | None, str, float]:
    """pytest -x over `tests` in `copy`: (exit status or None on timeout, output, seconds)."""
    home = copy.parent / "home"
    home.mkdir(exist_ok=True)
    marker = [] if options.include_slow else ["-m", "not slow"]
    command = [options.python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *marker]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [*command, *tests],
            cwd=copy,
            env=environment(copy, home, options.threads),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or b""
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        return None, text, time.monotonic() - start
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:300]
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run_mutant(mutant: Mutant, options) -> Outcome:
    start = time.monotonic()
    found = occurrences(mutant)
    if found != 1:
        return Outcome(
            mutant.name,
            mutant.file,
            "error",
            0.0,
            mutant.reason,
            f"original snippet found {found} times in {mutant.file} (expected exactly once)",
        )
    workdir = Path(tempfile.mkdtemp(prefix=f"clbench-mutant-{mutant.name}-"))
    try:
        copy = make_copy(workdir)
        target = copy / mutant.file
        text = target.read_text()
        assert text.count(mutant.original) == 1
        target.write_text(text.replace(mutant.original, mutant.replacement))
        status, output, _ = run_pytest(copy, mutant.tests, options, options.timeout)
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - start
    if status is None:
        return Outcome(mutant.name, mutant.file, "timeout", seconds, mutant.reason, "timed out")
    if status == 0:
        result = "equivalent" if mutant.reason else "survived"
        return Outcome(mutant.name, mutant.file, result, seconds, mutant.reason)
    if status in (1, 2):  # tests failed, or collection failed (an import error)
        return Outcome(
            mutant.name, mutant.file, "killed", seconds, mutant.reason, first_failure(output)
        )
    detail = f"pytest exit status {status}: {first_failure(output)}"
    return Outcome(mutant.name, mutant.file, "error", seconds, mutant.reason, detail)


def check_isolation(options) -> dict[str, object]:
    """Where the copy's modules come from, and that a mutant raising at import fails the tests."""
    workdir = Path(tempfile.mkdtemp(prefix="clbench-mutant-sentinel-"))
    try:
        copy = make_copy(workdir)
        home = workdir / "home"
        home.mkdir()
        probe = (
            "import baselines.trgp, clbench.linalg.basis as b; "
            "print(b.__file__, baselines.trgp.__file__)"
        )
        located = subprocess.run(
            [options.python, "-c", probe],
            cwd=copy,
            env=environment(copy, home, options.threads),
            capture_output=True,
            text=True,
        )
        files = located.stdout.split()
        from_copy = located.returncode == 0 and all(f.startswith(str(copy)) for f in files)
        target = copy / "clbench/linalg/basis.py"
        target.write_text(target.read_text() + f"\nraise RuntimeError({SENTINEL!r})\n")
        status, output, seconds = run_pytest(copy, (RULES,), options, options.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sentinel_failed = status in (1, 2) and SENTINEL in output
    return {
        "imported_from_copy": from_copy,
        "imported_files": files,
        "sentinel_failed_the_tests": sentinel_failed,
        "sentinel_seconds": round(seconds, 1),
        "ok": from_copy and sentinel_failed,
    }


def run_baseline(mutants: list[Mutant], options) -> dict[str, object]:
    """Every selected test on the unmutated copy: all must pass for the results to mean much."""
    tests = list(dict.fromkeys(t for mutant in mutants for t in mutant.tests))
    workdir = Path(tempfile.mkdtemp(prefix="clbench-mutant-baseline-"))
    try:
        copy = make_copy(workdir)
        status, output, seconds = run_pytest(copy, tests, options, options.timeout * 3)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = [line for line in output.splitlines() if line.strip()][-1:] if output else []
    return {
        "passed": status == 0,
        "exit_status": status,
        "seconds": round(seconds, 1),
        "summary": summary[0] if summary else "",
        "detail": "" if status == 0 else first_failure(output),
    }


def print_table(outcomes: list[Outcome]) -> None:
    width = max([len(o.name) for o in outcomes] + [6])
    file_width = max([len(o.file) for o in outcomes] + [4])
    header = f"{'mutant':<{width}}  {'file':<{file_width}}  {'result':<10}  {'s':>6}"
    print(f"\n{header}  reason / detail")
    print("-" * (width + file_width + 40))
    for o in outcomes:
        note = o.reason if o.result in ("equivalent", "survived") and o.reason else o.detail
        if o.result == "killed" and o.reason:
            note = "KILLED although a reason says it should survive: " + o.detail
        row = f"{o.name:<{width}}  {o.file:<{file_width}}  {o.result:<10}  {o.seconds:6.1f}"
        print(f"{row}  {note}")


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    counts = {k: 0 for k in ("killed", "survived", "equivalent", "error", "timeout")}
    for o in outcomes:
        counts[o.result] += 1
    counts["total"] = len(outcomes)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", action="append", default=[], help="run this mutant (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at a time")
    parser.add_argument("--include-slow", action="store_true", help="do not pass -m 'not slow'")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant's pytest")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    parser.add_argument(
        "--threads", type=int, help="OMP/MKL threads per pytest (default: 1 when --jobs > 1)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--no-sentinel", action="store_true", help="skip the isolation check")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    options = parser.parse_args(argv)
    if options.threads is None and options.jobs > 1:
        options.threads = 1

    names = [n for entry in options.only for n in entry.split(",") if n]
    known = {mutant.name for mutant in MUTANTS}
    if len(known) != len(MUTANTS):
        parser.error("mutant names are not unique")
    unknown = sorted(set(names) - known)
    if unknown:
        parser.error(f"unknown mutants: {', '.join(unknown)}")
    mutants = [mutant for mutant in MUTANTS if not names or mutant.name in names]

    if options.list:
        for mutant in mutants:
            found = occurrences(mutant)
            state = "ok" if found == 1 else f"ERROR: found {found} times"
            equivalent = "  [expected to survive]" if mutant.reason else ""
            print(f"{mutant.name:<45} {mutant.file:<40} {state}{equivalent}")
        print(f"{len(mutants)} mutants")
        return 0

    started = time.monotonic()
    report: dict[str, object] = {"root": str(ROOT), "python": options.python}
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        checks = {}
        if not options.no_sentinel:
            checks["isolation"] = pool.submit(check_isolation, options)
        if not options.no_baseline:
            checks["baseline"] = pool.submit(run_baseline, mutants, options)
        for key, future in checks.items():
            report[key] = future.result()
            print(f"{key}: {json.dumps(report[key])}", flush=True)
        if "isolation" in report and not report["isolation"]["ok"]:
            print("the copy is not what the tests import: mutation results would be meaningless")
            return 2
        if "baseline" in report and not report["baseline"]["passed"]:
            print("the unmutated tests fail: fix them before running mutants")
            return 2

        outcomes: list[Outcome] = []
        futures = {pool.submit(run_mutant, mutant, options): mutant for mutant in mutants}
        for future in as_completed(futures):
            outcome = future.result()
            with lock:
                outcomes.append(outcome)
                print(
                    f"[{len(outcomes)}/{len(mutants)}] {outcome.name}: {outcome.result} "
                    f"({outcome.seconds:.1f} s)",
                    flush=True,
                )
    order = {mutant.name: i for i, mutant in enumerate(mutants)}
    outcomes.sort(key=lambda o: order[o.name])
    wall = time.monotonic() - started
    print_table(outcomes)
    counts = summarize(outcomes)
    print(
        "\nsummary: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f"; wall time {wall:.0f} s with --jobs {options.jobs}"
    )
    stale = [o.name for o in outcomes if o.result == "killed" and o.reason]
    if stale:
        print(f"killed although a reason says they survive (update the reason): {stale}")
    report.update(
        summary=counts,
        wall_seconds=round(wall, 1),
        jobs=options.jobs,
        include_slow=options.include_slow,
        mutants=[
            {**asdict(o), "tests": list(next(m for m in mutants if m.name == o.name).tests)}
            for o in outcomes
        ],
    )
    if options.report:
        options.report.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {options.report}")
    return 1 if counts["survived"] or counts["error"] or counts["timeout"] else 0


if __name__ == "__main__":
    sys.exit(main())
