"""A small synthetic scenario for tests of data loading and training loops."""

import torch

from clbench.data.benchmark import TaskData, to_scenario
from clbench.data.custom import task_sequence


def scenario(cumulative: bool = False):
    """Three tasks of uint8 images with per-channel normalisation (the scale and the
    normalisation are both exercised)."""
    g = torch.Generator().manual_seed(0)
    tasks = [
        TaskData(
            f"t{k}",
            torch.randint(0, 256, (23 + 5 * k, 2, 3, 3), dtype=torch.uint8, generator=g),
            torch.randint(0, 3, (23 + 5 * k,), generator=g),
            torch.randint(0, 256, (7, 2, 3, 3), dtype=torch.uint8, generator=g),
            torch.randint(0, 3, (7,), generator=g),
            mean=(0.4, 0.6),
            std=(0.2, 0.3),
        )
        for k in range(3)
    ]
    return to_scenario(task_sequence(tasks), pc_valid=0.1, seed=3, cumulative=cumulative)
