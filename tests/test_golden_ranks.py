"""Golden basis sizes of GPM, SGP and TRGP on fixed AlexNet-5 and reduced ResNet-18
representations (the paper protocols' samples, caps and thresholds), two tasks each.

The representations are those of seeded, untrained networks on seeded smooth images (random
low-resolution images upsampled, as natural images have decaying spectra). The pinned sizes were
produced by `numpy_gpm_sizes`, an independent NumPy version of GPM's rule written from
docs/methods.md, which the test also re-checks; a change in any basis rule, in the
representation capture (unfolding, caps) or in the presets moves them.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.gpm import GPMMemory
from baselines.sgp import SGPMemory, SGPParams
from baselines.trgp import TRGPMemory, TRGPParams
from clbench.linalg import capture_representations
from clbench.models import ModelParams, build_model
from clbench.presets import NOTE_KEYS, load_presets
from clbench.strategies.projection import ProjectionParams, layer_sample_caps, projected_layers

SETTINGS = {  # model, benchmark preset, task-head count
    "alexnet": ("alexnet", "cifar100-10", 10),
    "resnet18": ("resnet18", "five-datasets", 5),
}

# Per task, the basis size of every projected layer in module order. SGP keeps GPM's bases (its
# importances differ, not its sizes); TRGP ranks old and new directions together, so it can add
# a few more.
ALEXNET_GPM = [[6, 38, 145, 81, 103], [9, 83, 252, 167, 210]]
RESNET_GPM = [
    [6, 22, 41, 46, 62, 52, 185, 15, 202, 257, 225, 499, 33, 554, 566, 440, 748, 67, 755, 766],
    [8, 35, 58, 67, 87, 80, 258, 17, 272, 293, 278, 602, 35, 616, 621, 579, 1106, 72, 1107, 1115],
]
GOLDEN = {
    "alexnet": {
        "gpm": ALEXNET_GPM,
        "sgp": ALEXNET_GPM,
        "trgp": [[6, 38, 145, 81, 103], [9, 83, 252, 184, 227]],
    },
    "resnet18": {
        "gpm": RESNET_GPM,
        "sgp": RESNET_GPM,
        "trgp": [
            [
                6,
                22,
                41,
                46,
                62,
                52,
                185,
                15,
                202,
                257,
                225,
                499,
                33,
                554,
                566,
                440,
                748,
                67,
                755,
                766,
            ],
            [
                8,
                35,
                58,
                67,
                87,
                80,
                258,
                17,
                272,
                293,
                278,
                602,
                36,
                617,
                623,
                579,
                1106,
                73,
                1107,
                1115,
            ],
        ],
    },
}


def smooth_images(n: int, low: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, low, low, generator=gen)
    return F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)


def representations(name: str, task: int) -> dict[str, torch.Tensor]:
    model_name, benchmark, heads = SETTINGS[name]
    torch.manual_seed(0)
    model = build_model(model_name, (3, 32, 32), heads, 10, ModelParams()).eval()
    params = load_presets()[benchmark]["strategies"]["gpm"]
    x = smooth_images(params["samples"], low=4 + 2 * task, seed=task)
    t = torch.full((len(x),), task, dtype=torch.long)
    layers = projected_layers(model)
    caps = layer_sample_caps(layers, len(x), tuple(params["layer_caps"]))
    with torch.no_grad():
        return capture_representations(model, lambda: model(x, t), layers, caps)


def preset_params(cls, name: str, strategy: str):
    values = load_presets()[SETTINGS[name][1]]["strategies"][strategy]
    fields = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k not in NOTE_KEYS
    }
    return cls(**fields)


def memory_sizes(memory, reps_by_task) -> list[list[int]]:
    sizes = []
    for task, reps in enumerate(reps_by_task):
        memory.update(task, reps)
        sizes.append(list(memory.sizes().values()))
    return sizes


def numpy_gpm_sizes(reps_by_task, thresholds) -> list[list[int]]:
    """GPM's rule in NumPy, float64: task 0 keeps r with cumsum(s^2)/sum(s^2) < eps; later tasks
    add residual directions one at a time while the covered energy stays below eps."""
    bases: dict[str, np.ndarray] = {}
    sizes = []
    for task, reps in enumerate(reps_by_task):
        for name, R in reps.items():
            R = R.double().numpy()
            eps = thresholds(task)
            if name not in bases:
                U, s, _ = np.linalg.svd(R, full_matrices=False)
                ratio = np.cumsum(s**2) / np.sum(s**2)
                bases[name] = U[:, : int(np.sum(ratio < eps))]
                continue
            M = bases[name]
            total = np.sum(R**2)
            residual = R - M @ (M.T @ R)
            U, s, _ = np.linalg.svd(residual, full_matrices=False)
            covered = (total - np.sum(s**2)) / total
            r = 0
            while r < len(s) and covered < eps:
                covered += s[r] ** 2 / total
                r += 1
            bases[name] = np.hstack([M, U[:, :r]])[:, : R.shape[0]]
        sizes.append([b.shape[1] for b in bases.values()])
    return sizes


@pytest.fixture(scope="module", params=sorted(SETTINGS))
def fixed(request):
    name = request.param
    return name, [representations(name, task) for task in (0, 1)]


@pytest.mark.slow
def test_the_numpy_rule_gives_the_pinned_gpm_sizes(fixed):
    name, reps = fixed
    params = preset_params(ProjectionParams, name, "gpm")
    expected = numpy_gpm_sizes(reps, lambda t: params.threshold[0] + params.threshold_increment * t)
    assert expected == GOLDEN[name]["gpm"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "memory_type", "params_type"),
    [
        ("gpm", GPMMemory, ProjectionParams),
        ("sgp", SGPMemory, SGPParams),
        ("trgp", TRGPMemory, TRGPParams),
    ],
)
def test_basis_sizes_match_the_golden_values(fixed, strategy, memory_type, params_type):
    name, reps = fixed
    memory = memory_type(preset_params(params_type, name, strategy))
    assert memory_sizes(memory, reps) == GOLDEN[name][strategy]
