"""Finds test code that uses a fixed port or fixed shared state.

The suite must pass beside a running stack (tools/run-local: core 50051 and
9102, relay 9103, edge 8080, the servers 6379, 5432, 5672, 15672, 25672) and
beside another checkout's suite. A test that binds a fixed port, connects to one
expecting nobody there, or reads a fixed path under /var/tmp, /tmp or the home
directory collides with them. Isolated tests take ports from the kernel (port 0,
or a socket bound to 0 and held), files from tmp_path, servers from
libs/testing's fixtures.

What is scanned: test sources (`*_test.py`, `*_testing.py`, `testing.py`,
`harness.py`, `conftest.py`, `tests/`, `libs/testing/`), the test rules of
BUILD files (`*_test(...)`: their `env` and `args`) and `--test_env` lines of a
.bazelrc. An exception is an allowlist entry that says why (isolation_allowlist.toml).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Ports the local stack listens on (tools/run-local and tools/servers).
STACK_PORTS = frozenset({50051, 50052, 9102, 9103, 8080, 6379, 5432, 5672, 15672, 25672})
_HOST = r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1?\])"
_ADDRESS = re.compile(_HOST + r":(\d+)\b")
_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1", "::"})  # noqa: S104 - names, not binds
_PORT_NAME = re.compile(r"(?:^|_)port$", re.IGNORECASE)
_FIXED_PATH = re.compile(r"(?:^|[\s=:'\"])(/var/tmp\b|/tmp/|~/|\$HOME\b)|/\.config/")
# Module constants (and tools/servers' default_config) that name the shared servers
# or the developer's own files.
_SHARED_NAMES = frozenset(
    {"CONFIG", "STATE_DIR", "DEFAULT_STATE_DIR", "DEV_KEY_DIR", "DEFAULT_DIR", "default_config"}
)
_TEST_NAMES = frozenset({"conftest.py", "harness.py", "testing.py"})


@dataclass(frozen=True)
class Finding:
    """One place that is not isolated; `text` is its source line, which allowlist entries match."""

    path: str
    line: int
    rule: str
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}\n    {self.text.strip()}"


@dataclass(frozen=True)
class Allowed:
    """An exception: findings in `path` whose line contains `contains` (every finding of
    the file when it is empty: for files that only parse or render values), for `reason`."""

    path: str
    contains: str
    reason: str

    def allows(self, finding: Finding) -> bool:
        return self.path == finding.path and self.contains in finding.text


def is_test_source(path: str) -> bool:
    """Whether a .py file is test code (a test, a test helper or a fixture)."""
    pure = PurePosixPath(path)
    return (
        pure.name.endswith(("_test.py", "_testing.py"))
        or pure.name in _TEST_NAMES
        or pure.parts[:1] == ("tests",)
        or pure.parts[:2] == ("libs", "testing")
    )


def scan_file(path: str, text: str) -> list[Finding]:
    """Findings in one file, by its kind; files of no kind scanned here give none."""
    name = PurePosixPath(path).name
    if name in ("BUILD", "BUILD.bazel") or name.endswith(".BUILD"):
        return scan_build(path, text)
    if name.endswith("bazelrc"):
        return scan_bazelrc(path, text)
    if name.endswith(".py") and is_test_source(path):
        return scan_python(path, text)
    return []


def scan_python(path: str, text: str) -> list[Finding]:
    """Fixed ports, fixed paths, the home directory and shared-state constants in test code."""
    lines = text.splitlines()
    found: list[Finding] = []

    tree = ast.parse(text, filename=path)
    for node in ast.walk(tree):
        for where, rule, message in _python_node(node):
            found.append(_at(path, lines, where, rule, message))
    return _unique(found)


# What a rule reports: the node whose line is shown, the rule, the message.
_Hit = tuple[ast.AST, str, str]


def _at(path: str, lines: Sequence[str], node: ast.AST, rule: str, message: str) -> Finding:
    line = getattr(node, "lineno", 1)
    return Finding(path, line, rule, message, lines[line - 1] if lines else "")


def _python_node(node: ast.AST) -> Iterator[_Hit]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield from ((node, rule, message) for rule, message in _string_findings(node.value))
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        if node.value in STACK_PORTS:
            yield node, "fixed-port", f"{node.value} is a port the local stack uses"
    elif isinstance(node, ast.keyword) and node.arg and _PORT_NAME.search(node.arg):
        port = _port_literal(node.value)
        if port:
            yield node.value, "fixed-port", f"{node.arg}={port}: take a free port instead"
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            yield from _named_port(key, value)
    elif isinstance(node, ast.Call):
        yield from _call_findings(node)
    elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
        host, number = node.elts[0], _port_literal(node.elts[1])
        if isinstance(host, ast.Constant) and host.value in _HOSTS and number:
            yield node, "fixed-port", f"({host.value!r}, {number}): a fixed address"
    elif isinstance(node, ast.Attribute) and node.attr in _SHARED_NAMES:
        yield node, "shared-state", f"{node.attr}: the shared servers' or the developer's state"
    elif isinstance(node, ast.ImportFrom):
        for alias in node.names:
            if alias.name in _SHARED_NAMES:
                yield node, "shared-state", f"{alias.name}: the shared servers' or the developer's"


def _call_findings(node: ast.Call) -> Iterator[_Hit]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name in ("home", "expanduser"):
        yield node, "home-dir", f"{name}(): the developer's own files; use tmp_path"
    first = node.args[0] if node.args else None
    if name in ("get", "getenv") and isinstance(first, ast.Constant) and first.value == "HOME":
        yield node, "home-dir", "reads $HOME: the developer's own files; use tmp_path"
    if name in ("setenv", "putenv", "get", "setdefault") and len(node.args) >= 2:
        yield from _named_port(node.args[0], node.args[1])


def _named_port(key: ast.expr | None, value: ast.expr) -> Iterator[_Hit]:
    """`"X_PORT": "8080"` in an environment: a fixed port whatever its number."""
    if (
        isinstance(key, ast.Constant)
        and isinstance(key.value, str)
        and _PORT_NAME.search(key.value)
    ):
        port = _port_literal(value)
        if port:
            yield key, "fixed-port", f"{key.value}={port}: take a free port instead"


def _port_literal(node: ast.expr) -> int | None:
    """A nonzero port written as a literal (int or digits); 0 asks the kernel, so it is fine."""
    if isinstance(node, ast.Constant):
        if type(node.value) is int:
            return node.value or None
        if isinstance(node.value, str) and node.value.strip().isdigit():
            return int(node.value) or None
    return None


def _string_findings(value: str) -> Iterator[tuple[str, str]]:
    for match in _ADDRESS.finditer(value):
        if int(match.group(1)):
            yield "fixed-port", f"{match.group(0)}: a fixed address"
    digits = re.fullmatch(r"(\d+)(?:/tcp|/udp)?", value.strip())
    if digits and int(digits.group(1)) in STACK_PORTS:
        yield "fixed-port", f"{value!r} is a port the local stack uses"
    path = _FIXED_PATH.search(value)
    if path:
        shown = path.group(0).lstrip(" \t=:'\"")
        yield "fixed-path", f"{shown!r}: a fixed path others share; use tmp_path"


def scan_build(path: str, text: str) -> list[Finding]:
    """The strings of test rules' `env` and `args`: what a test process is started with."""
    lines = text.splitlines()
    found = []
    tree = ast.parse(text, filename=path)
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", "").endswith("_test")):
            continue
        for keyword in call.keywords:
            if keyword.arg not in ("env", "args"):
                continue
            for node in ast.walk(keyword.value):
                for where, rule, message in _python_node(node):
                    found.append(_at(path, lines, where, rule, message))
    return _unique(found)


def scan_bazelrc(path: str, text: str) -> list[Finding]:
    """`--test_env=NAME=value` lines: a fixed port or path handed to every test."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in re.finditer(r"--test_env[= ](\S+)", line):
            name, _, value = match.group(1).partition("=")
            findings = list(_string_findings(value))
            if _PORT_NAME.search(name) and value.strip().isdigit() and int(value):
                findings.append(("fixed-port", f"{name}={value}: a fixed port for every test"))
            found += [Finding(path, number, rule, msg, line) for rule, msg in findings]
    return _unique(found)


def _unique(found: Iterable[Finding]) -> list[Finding]:
    # A literal can match twice (a tuple and its int): one line per rule is enough.
    seen: dict[tuple[str, int, str], Finding] = {}
    for finding in found:
        seen.setdefault((finding.path, finding.line, finding.rule), finding)
    return sorted(seen.values(), key=lambda f: (f.path, f.line, f.rule))


def load_allowlist(text: str) -> list[Allowed]:
    """Entries of an allowlist file; ValueError when one lacks a path or a reason."""
    entries = []
    for number, raw in enumerate(tomllib.loads(text).get("allow", []), 1):
        entry = Allowed(
            str(raw.get("path", "")), str(raw.get("contains", "")), str(raw.get("reason", ""))
        )
        if not (entry.path and entry.reason.strip()):
            raise ValueError(f"allowlist entry {number} needs a path and a reason")
        entries.append(entry)
    return entries


def apply_allowlist(
    findings: Sequence[Finding], allowlist: Sequence[Allowed], scanned: Iterable[str]
) -> tuple[list[Finding], list[Allowed]]:
    """(findings no entry allows, entries for a scanned file that allow nothing: stale)."""
    used: set[Allowed] = set()
    left = []
    for finding in findings:
        match = [entry for entry in allowlist if entry.allows(finding)]
        used.update(match)
        if not match:
            left.append(finding)
    scanned_paths = set(scanned)
    stale = [a for a in allowlist if a not in used and a.path in scanned_paths]
    missing = [a for a in allowlist if a.path not in scanned_paths]
    return left, stale + missing


def main(argv: Sequence[str]) -> int:
    """`isolation ALLOWLIST FILE...`: prints every finding no entry allows; 1 if any."""
    allowlist = load_allowlist(Path(argv[0]).read_text())
    paths = list(argv[1:])
    findings = [f for path in paths for f in scan_file(path, Path(path).read_text())]
    left, stale = apply_allowlist(findings, allowlist, paths)
    for finding in left:
        print(finding)
    for entry in stale:
        print(f"stale allowlist entry (matches nothing): {entry.path}: {entry.contains!r}")
    if left or stale:
        print(
            f"\n{len(left)} finding(s), {len(stale)} stale entr(ies). Take ports from the kernel,"
            " files from tmp_path, servers from libs/testing; or add an entry with a reason to"
            " tools/lint/isolation_allowlist.toml.",
        )
        return 1
    print(f"{len(paths)} files scanned, {len(findings)} allowed finding(s), none left")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
