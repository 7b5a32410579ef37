"""`clbench new-strategy NAME`: a working strategy package to start from.

It writes `clbench-NAME/` with a pyproject that registers the strategy under the
`clbench.strategies` entry-point group, the strategy module (parameters, plugin, factory) and a
test; `pip install -e clbench-NAME` makes it appear in `clbench list`, `run`, `sweep` and `report`.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from clbench.errors import ConfigError
from clbench.strategies import STRATEGIES

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package/__init__.py.tmpl": "{package}/__init__.py",
    "package/strategy.py.tmpl": "{package}/strategy.py",
    "tests/test_strategy.py.tmpl": "tests/test_{package}.py",
}


def placeholders(name: str) -> dict[str, str]:
    """The names derived from a strategy name such as `my-method`."""
    identifier = name.replace("-", "_")
    return {
        "name": name,
        "dist": f"clbench-{name}",
        "package": f"clbench_{identifier}",
        "factory": identifier,
        "params_class": "".join(part.capitalize() for part in name.split("-")) + "Params",
    }


def new_strategy(name: str, folder: Path) -> Path:
    """Write the skeleton package for strategy `name` into `folder/clbench-NAME`; return it."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"strategy name {name!r} is not valid; use lower-case letters, digits and single "
            "hyphens, starting with a letter (e.g. my-method)"
        )
    if name in dict(STRATEGIES.items()) or name in STRATEGIES.broken():
        raise ConfigError(f"a strategy named {name!r} is already registered; choose another name")
    values = placeholders(name)
    target = Path(folder) / values["dist"]
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --dir or remove it")
    templates = resources.files("clbench").joinpath("templates/strategy")
    for source, destination in FILES.items():
        path = target / destination.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(templates.joinpath(source).read_text()).substitute(values))
    return target
