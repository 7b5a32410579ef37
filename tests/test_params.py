from dataclasses import dataclass
from typing import Literal

import pytest

from clbench.errors import ConfigError
from clbench.params import build_params, coerce, parse_assignment, require


@dataclass
class Example:
    rate: float = 0.1
    steps: int = 3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    thresholds: tuple[float, ...] = (0.9,)
    limit: float | None = None

    def __post_init__(self):
        require(self.rate > 0, f"example.rate={self.rate} must be > 0")


def test_text_values_are_converted_to_field_types():
    params = build_params(
        Example,
        {"rate": "0.5", "steps": "7", "flag": "true", "mode": "b", "thresholds": "0.95,0.99"},
        "example",
    )
    assert params == Example(0.5, 7, True, "b", (0.95, 0.99), None)
    assert build_params(Example, {"limit": "none"}, "example").limit is None
    assert build_params(Example, {"limit": "2"}, "example").limit == 2.0


def test_toml_values_are_accepted():
    params = build_params(Example, {"rate": 1, "thresholds": [0.5, 0.6]}, "example")
    assert params.rate == 1.0 and isinstance(params.rate, float)
    assert params.thresholds == (0.5, 0.6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": "1"}, "unknown field example.nope; valid fields of example: rate, steps"),
        ({"steps": "1.5"}, "example.steps: '1.5' is not a valid int"),
        ({"flag": "maybe"}, "example.flag: 'maybe' is not a valid bool"),
        ({"mode": "c"}, "example.mode: 'c' is not one of 'a', 'b'"),
        ({"rate": "nan"}, "example.rate: 'nan' is not a valid float"),
        ({"rate": "-1"}, "example.rate=-1.0 must be > 0"),
    ],
)
def test_bad_values_name_the_field_and_what_is_valid(overrides, message):
    with pytest.raises(ConfigError) as caught:
        build_params(Example, overrides, "example")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_assignment_parsing():
    assert parse_assignment("ewc.ewc_lambda=10") == ("ewc", "ewc_lambda", "10")
    with pytest.raises(ConfigError, match="OWNER.FIELD=VALUE"):
        parse_assignment("ewc_lambda=10")


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError):
        coerce(int, True, "x")


def test_infinite_values_survive_a_json_round_trip():
    import json

    from clbench.params import params_as_dict

    @dataclass
    class WithInf:
        tau: float = 0.0

    params = build_params(WithInf, {"tau": "inf"}, "x")
    stored = json.loads(json.dumps(params_as_dict(params), allow_nan=False))
    assert stored == {"tau": "inf"}
    assert build_params(WithInf, stored, "x") == params
