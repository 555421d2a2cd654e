"""Service configuration: a frozen dataclass whose fields are environment variables.

    @dataclass(frozen=True)
    class CoreConfig:
        grpc_port: int = setting("SYNCBRIDGE_CORE_GRPC_PORT", 50051, min=1, max=65535)
        grace_seconds: float = setting("SYNCBRIDGE_CORE_GRACE_SECONDS", 20.0, min=0)
        pg_dsn: str = setting("SYNCBRIDGE_CORE_PG_DSN", "postgresql://...", secret=True)

    config = load_config(CoreConfig, os.environ, prefix="SYNCBRIDGE_CORE_")
    log.info("config", extra=describe(config))

Supported field types: str, int, float, bool and tuple[str, ...] (comma-separated).
Durations are float seconds, named *_SECONDS: ruff's dataclass-default check
(RUF009) accepts a float default but would flag every timedelta one.
A variable that is not set takes the field's default. Every problem is
collected before raising, so one failed start-up names every bad variable.
`libs.config.reference` renders the declarations as `--help` text and a README table.
"""

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from libs.config.parsers import parser_for

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")
T = TypeVar("T")

REDACTED = "<redacted>"
_METADATA_KEY = "libs.config.setting"
_NUMERIC = (int, float)


class ConfigError(ValueError):
    """The environment does not make a valid configuration; `problems` has one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Setting:
    """What `setting()` attaches to a dataclass field."""

    env: str
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    secret: bool
    help: str


def setting(
    env: str,
    default: T,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Iterable[str] | None = None,
    secret: bool = False,
    help: str = "",
) -> T:
    """Declares a config field read from `env`, with optional bounds or allowed values.

    `min`/`max` bound numbers; `choices` lists the allowed
    values of a string, or of every item of a tuple[str, ...]. A `secret` value
    is never shown in errors nor by `describe()`.
    """
    spec = Setting(
        env=env,
        min=min,
        max=max,
        choices=None if choices is None else tuple(choices),
        secret=secret,
        help=help,
    )
    return dataclasses.field(default=default, metadata={_METADATA_KEY: spec})


def load_config(cls: type[C], environ: Mapping[str, str], *, prefix: str | None = None) -> C:
    """Builds `cls` from `environ`, or raises ConfigError naming every bad variable.

    With `prefix`, a variable that starts with it but is no setting of `cls` is
    reported too: a typo must not silently leave the default in force.
    Raises TypeError if `cls` itself is declared wrongly (a programming error).
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):
        spec = spec_of(cls, field)
        annotation = hints[field.name]
        _check_declaration(cls, field.name, annotation, spec)
        raw = environ.get(spec.env)
        if raw is None:
            continue
        parser = parser_for(annotation)
        try:
            value = parser.parse(raw)
        except ValueError:
            problems.append(f"{spec.env}: expected {parser.expected}, got {_shown(raw, spec)}")
            continue
        problem = _out_of_bounds(value, spec) or _not_a_choice(value, spec)
        if problem:
            problems.append(f"{spec.env}: {problem}, got {_shown(raw, spec)}")
            continue
        values[field.name] = value
    if prefix is not None:
        known = [spec_of(cls, field).env for field in dataclasses.fields(cls)]
        problems.extend(_unknown_variables(environ, prefix, known))
    if problems:
        raise ConfigError(problems)
    return cls(**values)


def describe(config: "DataclassInstance") -> dict[str, str]:
    """Maps each variable name to its value as text, secrets redacted: for a start-up log."""
    described: dict[str, str] = {}
    for field in dataclasses.fields(config):
        spec = spec_of(type(config), field)
        value = getattr(config, field.name)
        described[spec.env] = REDACTED if spec.secret else render(value)
    return described


def spec_of(cls: type, field: "dataclasses.Field[Any]") -> Setting:
    """The `setting()` declaration of one field; TypeError if it has none."""
    spec = field.metadata.get(_METADATA_KEY)
    if not isinstance(spec, Setting):
        raise TypeError(f"{cls.__name__}.{field.name} is not declared with setting()")
    return spec


def _check_declaration(cls: type, name: str, annotation: object, spec: Setting) -> None:
    # Constraints that could never apply are declaration mistakes; failing loudly
    # beats a bound that is silently ignored.
    parser_for(annotation)
    where = f"{cls.__name__}.{name}"
    if (spec.min is not None or spec.max is not None) and annotation not in _NUMERIC:
        raise TypeError(f"{where}: min/max need an int or float field")
    if spec.choices is not None and annotation not in (str, tuple[str, ...]):
        raise TypeError(f"{where}: choices need a str or tuple[str, ...] field")


def _shown(raw: str, spec: Setting) -> str:
    return REDACTED if spec.secret else repr(raw)


def _out_of_bounds(value: object, spec: Setting) -> str | None:
    # bool is an int subclass, but a flag has no bounds.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if spec.min is not None and value < spec.min:
        return f"must be at least {spec.min:g}"
    if spec.max is not None and value > spec.max:
        return f"must be at most {spec.max:g}"
    return None


def _not_a_choice(value: object, spec: Setting) -> str | None:
    if spec.choices is None:
        return None
    items = value if isinstance(value, tuple) else (value,)
    if all(item in spec.choices for item in items):
        return None
    return "must be one of " + ", ".join(spec.choices)


def _unknown_variables(environ: Mapping[str, str], prefix: str, known: list[str]) -> list[str]:
    problems = []
    for name in sorted(environ):
        if name.startswith(prefix) and name not in known:
            # Only names are reported: the value of a mistyped secret must not leak.
            close = _closest(name, prefix, known)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name}: unknown variable{hint}")
    return problems


def _closest(name: str, prefix: str, known: list[str]) -> list[str]:
    """The likeliest intended setting: a known name containing the typed word
    (TTL → SESSION_TTL_SECONDS) beats one that merely shares the prefix."""
    word = name[len(prefix) :]
    containing = [k for k in known if word and word in k[len(prefix) :]]
    if len(containing) == 1:
        return containing
    suffixes = {k[len(prefix) :]: k for k in known}
    close = difflib.get_close_matches(word, list(suffixes), n=1)
    return [suffixes[close[0]]] if close else []


def render(value: object) -> str:
    """A value as the text that would set it: true/false, comma-joined tuples."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)
