"""Code provenance of a result: which code produced it, so that results can be cited and stale ones
found.

Every result records the clbench version, the git commit of the checkout clbench runs from (with
whether the tracked files of `clbench/` and `baselines/` had uncommitted changes), a digest of the
harness's source (the `clbench` and `baselines` packages: every `.py` file) and a digest
of the source of the package that defines the strategy (for an outside plugin, its own package; None
for a strategy defined where there is no source file, as a notebook cell). `code_digest` combines
the last two: a sweep re-runs a result whose `code_digest` differs from the current code's
(`clbench.sweep`), whether or not the code lives in git.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# Python source only: what the TOML presets and suites change is in the resolved configuration,
# which names the result already.
SOURCE_SUFFIXES = (".py",)
HARNESS_PACKAGES = ("clbench", "baselines")


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


def source_digest(root: Path) -> str:
    """SHA-256 over the relative paths and contents of the source files under `root` (or of the
    file `root`), in sorted order; caches and byte-code are not source."""
    files = (
        [root]
        if root.is_file()
        else sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    )
    digest = hashlib.sha256()
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root.parent)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def harness_roots() -> list[Path]:
    """The folders of the `clbench` and `baselines` packages."""
    roots = [package_root(name) for name in HARNESS_PACKAGES]
    return [root for root in roots if root is not None]


def harness_digest() -> str:
    """The digest of the `clbench` and `baselines` sources."""
    parts = [source_digest(root) for root in harness_roots()]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


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


def strategy_digest(strategy_module: str | None) -> str | None:
    """The digest of the package that defines a strategy; None where it has no source file."""
    root = package_root(strategy_module)
    return source_digest(root) if root is not None else None


def current_code_digest(strategy_module: str | None, harness: str | None = None) -> str:
    """The `code_digest` a result of a strategy defined in `strategy_module` records: the
    harness's digest (`harness`, computed when not given) combined with the strategy's."""
    harness = harness or harness_digest()
    return hashlib.sha256(f"{harness}:{strategy_digest(strategy_module)}".encode()).hexdigest()


def code_provenance(strategy_module: str | None) -> dict[str, Any]:
    """What a result records of the code that produced it (module docstring)."""
    harness = harness_digest()
    return {
        "clbench_version": metadata.version("clbench"),
        **git_state(package_root("clbench"), harness_roots()),
        "harness_digest": harness,
        "strategy_module": strategy_module,
        "strategy_digest": strategy_digest(strategy_module),
        "code_digest": current_code_digest(strategy_module, harness),
    }
