"""`clbench new-strategy NAME`: a working strategy package to start from.

It writes `clbench-NAME/` with a pyproject that registers the strategy under the
`clbench.strategies` entry-point group and its presets under `clbench.presets`, the strategy
module (parameters, plugin, and the factory, which declares with `describe` that reports show it
under its name, family "plugins", as a method), its presets file and a test;
`pip install -e clbench-NAME` makes it appear in `clbench list`, `run`, `sweep` and `report`.
"""

from __future__ import annotations

import keyword
import re
import shutil
from importlib import resources
from pathlib import Path
from string import Template

from clbench.errors import ConfigError
from clbench.strategies import STRATEGIES

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 64  # the package folder, module and test file names derive from it
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "package/__init__.py.tmpl": "{package}/__init__.py",
    "package/strategy.py.tmpl": "{package}/strategy.py",
    "package/presets.toml.tmpl": "{package}/presets.toml",
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
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        raise ConfigError(
            f"strategy name {name[:80]!r} is not valid; use at most {MAX_NAME} lower-case "
            "letters, digits and single hyphens, starting with a letter (e.g. my-method)"
        )
    values = placeholders(name)
    if keyword.iskeyword(values["factory"]):
        raise ConfigError(
            f"strategy name {name!r} is a Python keyword, which cannot name its factory "
            f"function; choose another (e.g. my-{name})"
        )
    if name in dict(STRATEGIES.items()) or name in STRATEGIES.broken():
        raise ConfigError(f"a strategy named {name!r} is already registered; choose another name")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--dir {folder} is a file; give a folder (it is created if missing)")
    target = folder / values["dist"]
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --dir or remove it")
    templates = resources.files("clbench").joinpath("templates/strategy")
    try:
        for source, destination in FILES.items():
            path = target / destination.format(**values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(templates.joinpath(source).read_text()).substitute(values))
    except OSError as err:
        shutil.rmtree(target, ignore_errors=True)  # no half-written package is left
        raise ConfigError(f"cannot write {target}: {err.strerror or err}") from None
    return target
