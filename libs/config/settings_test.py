"""load_config reads, validates and reports; describe never shows a secret."""

from dataclasses import dataclass

import pytest

from libs.config.settings import REDACTED, ConfigError, describe, load_config, setting

_HIDDEN = "hunter2"


@dataclass(frozen=True)
class CoreConfig:
    grpc_port: int = setting("SYNCBRIDGE_CORE_GRPC_PORT", 50051, min=1, max=65535)
    ratio: float = setting("SYNCBRIDGE_CORE_RATIO", 0.5, min=0, max=1)
    debug: bool = setting("SYNCBRIDGE_CORE_DEBUG", False)
    log_level: str = setting("SYNCBRIDGE_CORE_LOG_LEVEL", "INFO", choices=("DEBUG", "INFO"))
    origins: tuple[str, ...] = setting("SYNCBRIDGE_CORE_ORIGINS", ())
    drain_seconds: float = setting("SYNCBRIDGE_CORE_DRAIN_SECONDS", 30.0, min=0)
    db_password: str = setting("SYNCBRIDGE_CORE_DB_PASSWORD", "", secret=True, help="PostgreSQL")


def test_defaults_when_nothing_is_set() -> None:
    assert load_config(CoreConfig, {}) == CoreConfig()


def test_every_type_is_parsed() -> None:
    config = load_config(
        CoreConfig,
        {
            "SYNCBRIDGE_CORE_GRPC_PORT": "6000",
            "SYNCBRIDGE_CORE_RATIO": "0.75",
            "SYNCBRIDGE_CORE_DEBUG": "yes",
            "SYNCBRIDGE_CORE_LOG_LEVEL": "DEBUG",
            "SYNCBRIDGE_CORE_ORIGINS": "https://a.example, https://b.example",
            "SYNCBRIDGE_CORE_DRAIN_SECONDS": "2.5",
            "SYNCBRIDGE_CORE_DB_PASSWORD": _HIDDEN,
        },
    )
    assert config == CoreConfig(
        grpc_port=6000,
        ratio=0.75,
        debug=True,
        log_level="DEBUG",
        origins=("https://a.example", "https://b.example"),
        drain_seconds=2.5,
        db_password=_HIDDEN,
    )


def test_message_names_the_variable_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CoreConfig, {"SYNCBRIDGE_CORE_GRPC_PORT": "abc"})
    assert "SYNCBRIDGE_CORE_GRPC_PORT: expected an integer, got 'abc'" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_all_problems_are_collected() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            CoreConfig,
            {
                "SYNCBRIDGE_CORE_GRPC_PORT": "70000",
                "SYNCBRIDGE_CORE_RATIO": "-0.1",
                "SYNCBRIDGE_CORE_DEBUG": "maybe",
                "SYNCBRIDGE_CORE_LOG_LEVEL": "TRACE",
                "SYNCBRIDGE_CORE_DRAIN_SECONDS": "soon",
            },
        )
    assert caught.value.problems == (
        "SYNCBRIDGE_CORE_GRPC_PORT: must be at most 65535, got '70000'",
        "SYNCBRIDGE_CORE_RATIO: must be at least 0, got '-0.1'",
        "SYNCBRIDGE_CORE_DEBUG: expected a boolean (true/false/1/0/yes/no), got 'maybe'",
        "SYNCBRIDGE_CORE_LOG_LEVEL: must be one of DEBUG, INFO, got 'TRACE'",
        "SYNCBRIDGE_CORE_DRAIN_SECONDS: expected a number, got 'soon'",
    )


def test_choices_apply_to_every_item_of_a_tuple() -> None:
    @dataclass(frozen=True)
    class Features:
        enabled: tuple[str, ...] = setting("APP_FEATURES", (), choices=("presence", "handoff"))

    assert load_config(Features, {"APP_FEATURES": "presence,handoff"}).enabled == (
        "presence",
        "handoff",
    )
    with pytest.raises(ConfigError, match="APP_FEATURES: must be one of"):
        load_config(Features, {"APP_FEATURES": "presence,teleport"})


def test_secret_value_is_never_echoed() -> None:
    @dataclass(frozen=True)
    class Secrets:
        pin: int = setting("APP_PIN", 0, secret=True, min=1000)
        key: str = setting("APP_KEY", "", secret=True, choices=("ok",))

    for environ in ({"APP_PIN": "s3cr3t-value"}, {"APP_PIN": "12"}, {"APP_KEY": "s3cr3t-value"}):
        with pytest.raises(ConfigError) as caught:
            load_config(Secrets, environ)
        message = str(caught.value)
        assert environ[next(iter(environ))] not in message
        assert REDACTED in message


def test_unknown_prefixed_variable_is_reported_with_a_suggestion() -> None:
    environ = {
        "SYNCBRIDGE_CORE_GRPC_PROT": "1",
        "SYNCBRIDGE_EDGE_PORT": "2",
        "PATH": "/bin",
    }
    with pytest.raises(ConfigError) as caught:
        load_config(CoreConfig, environ, prefix="SYNCBRIDGE_CORE_")
    assert caught.value.problems == (
        "SYNCBRIDGE_CORE_GRPC_PROT: unknown variable (did you mean SYNCBRIDGE_CORE_GRPC_PORT?)",
    )


def test_suggestion_prefers_the_setting_containing_the_typed_word() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CoreConfig, {"SYNCBRIDGE_CORE_DRAIN": "1"}, prefix="SYNCBRIDGE_CORE_")
    assert caught.value.problems == (
        "SYNCBRIDGE_CORE_DRAIN: unknown variable (did you mean SYNCBRIDGE_CORE_DRAIN_SECONDS?)",
    )


def test_unknown_variables_are_ignored_without_prefix() -> None:
    assert load_config(CoreConfig, {"SYNCBRIDGE_CORE_GRPC_PROT": "1"}) == CoreConfig()


def test_describe_redacts_secrets_and_renders_as_set() -> None:
    config = CoreConfig(debug=True, origins=("a", "b"), drain_seconds=1.5, db_password=_HIDDEN)
    assert describe(config) == {
        "SYNCBRIDGE_CORE_GRPC_PORT": "50051",
        "SYNCBRIDGE_CORE_RATIO": "0.5",
        "SYNCBRIDGE_CORE_DEBUG": "true",
        "SYNCBRIDGE_CORE_LOG_LEVEL": "INFO",
        "SYNCBRIDGE_CORE_ORIGINS": "a,b",
        "SYNCBRIDGE_CORE_DRAIN_SECONDS": "1.5",
        "SYNCBRIDGE_CORE_DB_PASSWORD": REDACTED,
    }


def test_field_without_setting_is_a_declaration_error() -> None:
    @dataclass(frozen=True)
    class Broken:
        port: int = 1

    with pytest.raises(TypeError, match=r"Broken\.port is not declared with setting\(\)"):
        load_config(Broken, {})


def test_constraints_that_cannot_apply_are_declaration_errors() -> None:
    @dataclass(frozen=True)
    class BoundedText:
        name: str = setting("APP_NAME", "a", min=1)

    @dataclass(frozen=True)
    class NumberChoices:
        port: int = setting("APP_PORT", 1, choices=("1",))

    @dataclass(frozen=True)
    class SetField:
        items: frozenset[str] = setting("APP_ITEMS", frozenset())

    for cls in (BoundedText, NumberChoices, SetField):
        with pytest.raises(TypeError):
            load_config(cls, {})
