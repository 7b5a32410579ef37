import torch

from clbench.memory import kept_bytes
from clbench.strategies import StrategyPlugin


class Holder:
    def __init__(self):
        self.basis = torch.zeros(10, 4, dtype=torch.float64)  # 320 bytes
        self.views = [self.basis[:, :2]]  # shares storage: not counted again
        self.per_task = {0: torch.zeros(5, dtype=torch.float32)}  # 20 bytes
        self.model = torch.nn.Linear(3, 2, bias=False)  # 24 bytes


class Reporting(StrategyPlugin):
    """A strategy plugin names what it keeps; its other attributes are not walked."""

    def __init__(self):
        self.scratch = torch.zeros(500)  # working memory, not kept between tasks

    def kept(self):
        return [torch.zeros(250, dtype=torch.float32)]  # 1000 bytes


def test_tensors_are_counted_once_and_self_reports_are_trusted():
    assert kept_bytes([Holder()]) == 320 + 20 + 24
    assert kept_bytes([Holder(), Reporting()]) == 320 + 20 + 24 + 1000
    assert kept_bytes([]) == 0
