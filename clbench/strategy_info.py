"""How a strategy presents itself in reports: a display name, a family and a role, declared where
it is registered (`describe`) and stored in every result file, so that a report needs neither the
strategy's code nor a list of names of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from clbench.errors import ConfigError

#: method: competes for "best"; bound: a limit a method is measured against (fine-tuning, a frozen
#: network, training from scratch); oracle: sees what a continual learner may not (joint training).
ROLES = ("method", "bound", "oracle")
#: The family of a strategy that declares none.
DEFAULT_FAMILY = "plugins"
_ATTRIBUTE = "__clbench_info__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class StrategyInfo:
    """A strategy's presentation: `display_name` in tables and figures, `family` (rows of one
    family are grouped), `role` (one of `ROLES`; only methods are ever marked best)."""

    display_name: str
    family: str = DEFAULT_FAMILY
    role: str = "method"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"strategy role {self.role!r} is not one of {', '.join(ROLES)}")
        for key in ("display_name", "family"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"strategy {key} {value!r} must be a non-empty string")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: object) -> StrategyInfo:
        """The info a result file stores (`as_dict`); ConfigError saying what is wrong with it."""
        keys = [f.name for f in fields(cls)]
        if not isinstance(stored, dict):
            kind = type(stored).__name__
            raise ConfigError(
                f"strategy_info is a {kind}, expected an object with {', '.join(keys)}"
            )
        unknown = sorted(map(str, set(stored) - set(keys)))
        if unknown:
            raise ConfigError(
                f"strategy_info has unknown keys {', '.join(unknown)}; valid: {', '.join(keys)}"
            )
        if "display_name" not in stored:
            raise ConfigError("strategy_info has no display_name")
        try:
            return cls(**stored)
        except ConfigError as err:
            raise ConfigError(f"strategy_info: {err}") from None


def describe(
    display_name: str, family: str = DEFAULT_FAMILY, role: str = "method"
) -> Callable[[F], F]:
    """Decorate a strategy factory with how reports present it, e.g.
    `@describe("GPM", family="projection")` above `def gpm(model, params)`."""
    info = StrategyInfo(display_name, family, role)

    def mark(factory: F) -> F:
        setattr(factory, _ATTRIBUTE, info)
        return factory

    return mark


def declared_info(name: str, factory: object) -> StrategyInfo:
    """What `factory` declared with `describe`; an undecorated factory is shown under its
    registered `name`, in the plugins family, as a method."""
    info = getattr(factory, _ATTRIBUTE, None)
    return info if isinstance(info, StrategyInfo) else StrategyInfo(name)


def info_of_result(document: dict[str, Any]) -> StrategyInfo:
    """The info a (valid) result document stores; a file written before strategies declared one
    is shown under its strategy's name, in the plugins family, as a method."""
    if "strategy_info" in document:
        return StrategyInfo.from_dict(document["strategy_info"])
    return StrategyInfo(document["spec"]["strategy"])
