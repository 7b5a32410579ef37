"""Code provenance of a result: which code produced it, so that results can be cited and stale ones
found.

Every result records the clbench version, the git commit of the checkout clbench runs from (with
whether the tracked files of `clbench/` and `baselines/` had uncommitted changes), and two digests
of the source that can change its numbers:
- `harness_digest`, of the training path: `clbench.runner` and the modules of clbench's
  benchmarks, with every clbench module they import, directly or through others (data, models,
  template, schedule, resolution); the report, the command line and the sweep are not on it;
- `strategy_digest`, of the strategy's module and every module it imports from its own top-level
  package, clbench and baselines (SGP's covers `baselines.sgp`, `baselines.gpm` and the family's
  shared `clbench.strategies.projection`, not `baselines.ness`); None for a strategy defined where
  there is no source file, as a notebook cell.
`code_digest` combines the two: a sweep re-runs a result whose `code_digest` differs from the
current code's (`clbench.sweep`), whether or not the code lives in git. Imports are read from the
source (`ast`), at any depth of a module, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import subprocess
from importlib import metadata
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

HARNESS_PACKAGES = ("clbench", "baselines")
TRAINING_ENTRY = "clbench.runner"
BENCHMARKS_GROUP = "clbench.benchmarks"


def package_root(module_name: str | None) -> Path | None:
    """The folder of the top-level package of `module_name`, or the module's own file; None
    where it has no source file (code defined in a notebook or by `exec`)."""
    if not module_name:
        return None
    try:
        spec = importlib.util.find_spec(module_name.split(".")[0])
    except (ImportError, ValueError):  # `__main__` of an interactive session has no spec
        return None
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def module_file(root: Path, module: str) -> Path | None:
    """The source file of `module` under the top-level package (or module file) `root`."""
    if root.is_file():
        return root if module == root.stem else None
    parts = module.split(".")[1:]
    for candidate in (
        root.joinpath(*parts).with_suffix(".py"),
        root.joinpath(*parts, "__init__.py"),
    ):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Module names a module's source imports (absolute; relative ones resolved), with `from
    package import name` also naming `package.name`, which may be a submodule."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def reachable_files(modules: list[str], packages: set[str]) -> list[Path]:
    """The source files of `modules` and of every module of the top-level `packages` that they
    import, directly or through others, with the packages they sit in (their `__init__.py`)."""
    roots = {name: package_root(name) for name in packages}
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        root = roots.get(name.split(".")[0])
        path = None if name in seen or root is None else module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        tree = ast.parse(path.read_bytes(), filename=str(path))
        imported = _imported(tree, name, path.name == "__init__.py")
        todo += [m for m in [*parents, *imported] if m.split(".")[0] in packages]
    return sorted(set(seen.values()))


def files_digest(files: list[Path]) -> str:
    """SHA-256 over the paths (from their top-level package) and contents of `files`."""
    digest = hashlib.sha256()
    for path in files:
        outside = path.parent  # the folder that holds its top-level package, or the module
        while (outside / "__init__.py").is_file():
            outside = outside.parent
        digest.update(str(path.relative_to(outside)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def harness_roots() -> list[Path]:
    """The folders of the `clbench` and `baselines` packages."""
    roots = [package_root(name) for name in HARNESS_PACKAGES]
    return [root for root in roots if root is not None]


def harness_digest() -> str:
    """The digest of the training path (module docstring)."""
    benchmarks = [p.module for p in entry_points(group=BENCHMARKS_GROUP)]
    entries = [TRAINING_ENTRY, *(m for m in benchmarks if m.split(".")[0] == "clbench")]
    return files_digest(reachable_files(entries, {"clbench"}))


def strategy_digest(strategy_module: str | None) -> str | None:
    """The digest of a strategy's module and what it imports from its own package, clbench and
    baselines; None where it has no source file."""
    if package_root(strategy_module) is None:
        return None
    assert strategy_module is not None
    packages = {strategy_module.split(".")[0], *HARNESS_PACKAGES}
    return files_digest(reachable_files([strategy_module], packages))


def git_state(folder: Path, sources: list[Path]) -> dict[str, Any]:
    """The commit of the git checkout that holds `folder`, and whether the tracked files under
    `sources` differ from it (the code that runs; documentation and tests do not count); both
    None where `folder` is not in a git checkout or git is missing."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    changes = git("status", "--porcelain", "--untracked-files=no", "--", *map(str, sources))
    return {"git_commit": commit, "git_dirty": bool(changes) if changes is not None else None}


def current_code_digest(strategy_module: str | None, harness: str | None = None) -> str:
    """The `code_digest` a result of a strategy defined in `strategy_module` records: the
    training path's digest (`harness`, computed when not given) combined with the strategy's."""
    harness = harness or harness_digest()
    return hashlib.sha256(f"{harness}:{strategy_digest(strategy_module)}".encode()).hexdigest()


def code_provenance(strategy_module: str | None) -> dict[str, Any]:
    """What a result records of the code that produced it (module docstring)."""
    harness = harness_digest()
    clbench_root = package_root("clbench")
    assert clbench_root is not None, "clbench has source files"
    return {
        "clbench_version": metadata.version("clbench"),
        **git_state(clbench_root, harness_roots()),
        "harness_digest": harness,
        "strategy_module": strategy_module,
        "strategy_digest": strategy_digest(strategy_module),
        "code_digest": current_code_digest(strategy_module, harness),
    }
