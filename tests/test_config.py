"""Hyperparameter validation: every bad value is refused with a message naming the field."""

from __future__ import annotations

import tomllib

import pytest

from agents.config import (
    FIELDS,
    LIVE_FIELDS,
    ConfigError,
    DDPGConfig,
    parse_assignment,
    parse_value,
    validate_field,
)


def bad_values(name: str) -> list[object]:
    spec = FIELDS[name]
    if spec.choices:
        return ["nope", 3]
    if spec.kind is list:
        return [[], [0], [5000], [1.5], "256", [1, 2, 3, 4, 5], [True]]
    if spec.kind is bool:
        return ["text", 1, "true"]  # only a real bool; the form and --set parse text first
    values: list[object] = ["text", True]
    if spec.minimum is not None:
        values.append(spec.minimum if spec.exclusive_minimum else spec.minimum - 1)
    if spec.maximum is not None:
        values.append(spec.maximum * 2 + 1)
    if spec.kind is int:
        values.append(1.5)
    if spec.kind is float:
        values.append(float("nan"))
    return values


CASES = [(name, value) for name in FIELDS for value in bad_values(name)]


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_bad_value_is_refused_naming_the_field_and_what_is_allowed(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        DDPGConfig().replace(**{name: value})
    message = str(info.value)
    assert message.startswith(f"{name}:")
    assert "expected" in message and "\n" not in message


def test_every_default_is_inside_its_own_allowed_range() -> None:
    # validate_field refuses a default outside its range; equality catches one it would normalise.
    defaults = DDPGConfig()
    for name in FIELDS:
        value = getattr(defaults, name)
        assert validate_field(name, value) == value, name
        spec = FIELDS[name]
        if spec.kind in (int, float) and spec.minimum is not None:
            assert value >= spec.minimum, name
        if spec.kind in (int, float) and spec.maximum is not None:
            assert value <= spec.maximum, name


def test_defaults_are_those_the_help_promises() -> None:
    defaults = DDPGConfig()
    assert (defaults.gamma, defaults.tau, defaults.batch_size, defaults.buffer_size) == (0.99, 0.005, 256, 1_000_000)
    assert (defaults.actor_lr, defaults.critic_lr, defaults.hidden_sizes) == (1e-3, 1e-3, (256, 256))
    assert (defaults.noise, defaults.noise_sigma, defaults.env_id) == ("gaussian", 0.1, "Pendulum-v1")


def test_eval_every_help_says_a_final_evaluation_still_runs() -> None:
    assert "a final evaluation still runs" in FIELDS["eval_every"].help


def test_int_is_accepted_for_a_float_field() -> None:
    assert DDPGConfig(gamma=1).gamma == 1.0


def test_unknown_key_names_the_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown hyperparameter 'gama'.*gamma"):
        DDPGConfig.from_mapping({"gama": 0.9})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("gamma=0.98", ("gamma", 0.98)), ("hidden_sizes=[400,300]", ("hidden_sizes", (400, 300))),
     ("noise=ou", ("noise", "ou")), ('noise="ou"', ("noise", "ou")), ("batch_size = 64", ("batch_size", 64))],
)
def test_assignments_are_parsed_as_toml_values(text: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize(("text", "match"), [("gamma", "expected key=value"), ("gama=1", "unknown"),
                                              ("batch_size=big", "batch_size"), ("gamma=[1]", "gamma")])
def test_bad_assignments_are_refused(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_assignment(text)


def test_overrides_keep_the_other_fields() -> None:
    base = DDPGConfig(env_id="MountainCarContinuous-v0", gamma=0.9, batch_size=64)
    changed = base.with_overrides(["batch_size=128"])
    assert (changed.env_id, changed.gamma, changed.batch_size) == ("MountainCarContinuous-v0", 0.9, 128)


def test_toml_round_trip_gives_the_same_config() -> None:
    config = DDPGConfig(env_id="Pendulum-v1", hidden_sizes=(64, 32), noise="ou", actor_lr=3e-4)
    data = tomllib.loads(config.to_toml())
    assert DDPGConfig.from_mapping({**data["hyperparameters"], "env_id": data["env_id"]}) == config


def test_structural_fields_are_not_live() -> None:
    assert {"buffer_size", "hidden_sizes", "seed", "device"}.isdisjoint(LIVE_FIELDS)
    assert {"noise_sigma", "actor_lr", "critic_lr", "tau"} <= set(LIVE_FIELDS)


def test_parse_value_accepts_what_a_form_would_type() -> None:
    assert parse_value("tau", "0.01") == 0.01
    assert parse_value("hidden_sizes", "[64, 64]") == (64, 64)
    with pytest.raises(ConfigError, match="tau"):
        parse_value("tau", "0")


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("True", True), ("false", False), ("FALSE", False)])
def test_a_switch_accepts_toml_and_python_spellings(text: str, expected: bool) -> None:
    assert parse_value("twin_critics", text) is expected


def test_a_switch_refuses_anything_else() -> None:
    with pytest.raises(ConfigError, match="twin_critics: 'yes' is not valid; expected true or false"):
        parse_value("twin_critics", "yes")
