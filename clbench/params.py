"""Typed parameters: dataclasses whose fields can be set from TOML presets and `--set` text.

Precedence, lowest first: the dataclass defaults (the papers' values), the benchmark preset, then
command-line overrides. Every failure is a `ConfigError` whose one-line message names the bad name
or value and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from clbench.errors import ConfigError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds (for `__post_init__` checks)."""
    if not condition:
        raise ConfigError(message)


def describe_type(tp: Any) -> str:
    """A short human description of a field type, for `clbench list` and error messages."""
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(describe_type(a) for a in get_args(tp))
    if origin in (tuple, list):
        return f"comma-separated {describe_type(get_args(tp)[0])}s"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a parameter dataclass's fields, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _scalar(tp: Any, value: Any, where: str) -> Any:
    bad = ConfigError(f"{where}: {value!r} is not a valid {describe_type(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise bad from None
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if math.isnan(number):
            raise bad
        return number
    if tp is str:
        return str(value)
    raise ConfigError(f"{where}: fields of type {describe_type(tp)} are not supported")


def coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert `value` (command-line text or a TOML value) to the field type `tp`."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if value == choice or str(value) == str(choice):
                return choice
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{where}: {value!r} is not one of {valid}")
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            if len(members) < len(get_args(tp)):
                return None
        for member in members:
            try:
                return coerce(member, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a valid {describe_type(tp)}")
    if origin in (tuple, list):
        item_type = get_args(tp)[0]
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [part for part in text.split(",") if part.strip()] if text else []
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            items = [value]
        converted = [coerce(item_type, item, where) for item in items]
        return tuple(converted) if origin is tuple else converted
    return _scalar(tp, value, where)


SCALARS = (bool, int, float, str)
PARSEABLE_HINT = "bool, int, float, str, Literal[...], X | None, or a list/tuple of one of them"


def parseable(tp: Any) -> bool:
    """Whether `coerce` can read command-line text into a field of type `tp`."""
    origin = get_origin(tp)
    if origin is Literal:
        return True
    if origin in (Union, types.UnionType):
        return all(a is type(None) or parseable(a) for a in get_args(tp))
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return len(args) == 1 and get_origin(args[0]) is None and parseable(args[0])
    return tp in SCALARS


def check_parseable(cls: type, where: str) -> None:
    """Raise `ConfigError` naming the first field of `cls` that `--set` could not parse."""
    for name, tp in field_types(cls).items():
        if not parseable(tp):
            raise ConfigError(
                f"{where}: field {name!r} has type {describe_type(tp)}, which --set cannot "
                f"parse; use {PARSEABLE_HINT}"
            )


def build_params(cls: type, overrides: Mapping[str, Any], owner: str) -> Any:
    """Instantiate parameter dataclass `cls` with `overrides`; unknown names list the valid ones."""
    types_by_name = field_types(cls)
    unknown = sorted(set(overrides) - set(types_by_name))
    if unknown:
        valid = ", ".join(types_by_name) or "(none)"
        raise ConfigError(f"unknown field {owner}.{unknown[0]}; valid fields of {owner}: {valid}")
    values = {
        name: coerce(types_by_name[name], value, f"{owner}.{name}")
        for name, value in overrides.items()
    }
    return cls(**values)


def _json_value(value: Any) -> Any:
    """Tuples become lists; infinite floats become the text `coerce` reads back ("inf")."""
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    return value


def params_as_dict(params: Any) -> dict[str, Any]:
    """A JSON-ready dict of a parameter dataclass."""
    return {f.name: _json_value(getattr(params, f.name)) for f in dataclasses.fields(params)}


def parse_assignment(text: str) -> tuple[str, str, str]:
    """Split `--set owner.field=value` into its three parts."""
    name, sep, value = text.partition("=")
    owner, dot, field = name.strip().partition(".")
    if not sep or not dot or not owner or not field:
        raise ConfigError(f"--set {text!r}: expected OWNER.FIELD=VALUE, e.g. ewc.ewc_lambda=10")
    return owner, field, value.strip()


def overrides_from_assignments(assignments: Sequence[str]) -> dict[str, dict[str, str]]:
    """`["protocol.lr=0.1", "ewc.ewc_lambda=10"]` -> `{"protocol": {"lr": "0.1"}, ...}`."""
    result: dict[str, dict[str, str]] = {}
    for text in assignments:
        owner, name, value = parse_assignment(text)
        result.setdefault(owner, {})[name] = value
    return result
