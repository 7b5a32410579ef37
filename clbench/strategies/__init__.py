"""The strategy plugin API: how a continual-learning method plugs into the harness."""

from clbench.strategies.api import STRATEGIES, Strategy, StrategyBuild, register_strategy

__all__ = ["STRATEGIES", "Strategy", "StrategyBuild", "register_strategy"]
