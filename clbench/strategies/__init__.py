"""The strategy plugin API: how a continual-learning method plugs into the harness (the contract
in `clbench.strategies.contract`, registration in `clbench.strategies.api`)."""

from clbench.strategies.api import STRATEGIES, Strategy, StrategyBuild, register_strategy
from clbench.strategies.contract import StrategyPlugin, TaskReport

__all__ = [
    "STRATEGIES",
    "Strategy",
    "StrategyBuild",
    "StrategyPlugin",
    "TaskReport",
    "register_strategy",
]
