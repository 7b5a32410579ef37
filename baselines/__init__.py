"""The zoo: one module per method, each registered through the `clbench.strategies` entry points
in pyproject.toml, the same way an outside package registers its strategies."""
