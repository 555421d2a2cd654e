"""No service depends on another: they share only libs/ and the proto.

Reads every package's BUILD.bazel and Python files (the `lint_srcs` the root
BUILD passes in) and reports, with the label or file and the edge:

1. a production (not testonly) target in `services/X`, or in `libs/`, whose
   dependencies, followed transitively through every attribute, reach
   `services/Y` (for libs: any service). This is what an image would ship.
2. a testonly target in `services/X` or `libs/` that depends directly on
   `services/Y` other than on a testonly target of Y (its test harness, through
   `deps`) or on a `py_binary` of Y run as a process (through `data`).
3. a Python file that production targets of `services/X` or `libs/` build
   from, importing `services.Y`.
4. a `services/*` package whose default visibility is not private.

BUILD files are Starlark, a Python subset, so `ast` reads them: a call with a
`name` is a target; every string in its attributes that starts with `//` or `:`
is a label. Macros are read the same way (`pytest_test` is a test: testonly).
Why not `bazel query` inside a test: a test cannot run Bazel on its own workspace.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# Rules whose targets are testonly whatever their attributes say.
TEST_RULES = frozenset({"py_test", "pytest_test"})
# Attributes that hold no dependency (or, for visibility, not one to follow).
NOT_EDGES = frozenset({"name", "visibility", "tags", "args", "env", "main", "size"})


@dataclasses.dataclass
class Target:
    label: str
    kind: str
    testonly: bool
    deps: set[str] = dataclasses.field(default_factory=set)  # every attribute but data
    data: set[str] = dataclasses.field(default_factory=set)
    srcs: set[str] = dataclasses.field(default_factory=set)  # repository-relative files


@dataclasses.dataclass
class Package:
    name: str  # "services/ws_edge"
    targets: dict[str, Target]
    default_visibility: list[str]


def service_of(package: str) -> str | None:
    """ "ws_edge" for services/ws_edge and its subpackages; None outside services/."""
    parts = package.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def package_of(label: str) -> str:
    return label.removeprefix("//").partition(":")[0]


def normalize(value: str, package: str) -> str | None:
    """The absolute label a string names, or None if it names none (files, @repos, text)."""
    if value.startswith(":"):
        return f"//{package}{value}"
    if value.startswith("//"):
        return value if ":" in value else f"{value}:{value.rsplit('/', 1)[-1]}"
    return None


def _strings(node: ast.AST) -> Iterator[str]:
    """Every string constant in an attribute value (lists, dicts, concatenations)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def parse_build(text: str, package: str) -> Package:
    """The targets a BUILD file declares, and its package's default visibility."""
    tree = ast.parse(text)
    targets: dict[str, Target] = {}
    default_visibility: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        attrs = {kw.arg: kw.value for kw in node.keywords if kw.arg}
        if node.func.id == "package" and "default_visibility" in attrs:
            default_visibility = list(_strings(attrs["default_visibility"]))
            continue
        name = attrs.get("name")
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            continue
        testonly = node.func.id in TEST_RULES or (
            isinstance(attrs.get("testonly"), ast.Constant)
            and getattr(attrs["testonly"], "value", False) is True
        )
        target = Target(f"//{package}:{name.value}", node.func.id, testonly)
        for attr, value in attrs.items():
            if attr in NOT_EDGES:
                continue
            for text_value in _strings(value):
                label = normalize(text_value, package)
                if label is not None:
                    (target.data if attr == "data" else target.deps).add(label)
                elif attr == "srcs" and text_value.endswith(".py"):
                    target.srcs.add(f"{package}/{text_value}")
        targets[target.label] = target
    return Package(package, targets, default_visibility)


def imported_services(text: str) -> set[str]:
    """The services a Python file imports (`services.ws_edge...` -> "ws_edge")."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "services":
                found.add(parts[1])
    return found


def _guarded(package: str) -> bool:
    """Packages whose code must not reach a service other than their own."""
    return package.startswith(("services/", "libs/"))


def _foreign(package: str, label: str) -> bool:
    """True if `label` is in a service other than `package`'s own."""
    theirs = service_of(package_of(label))
    return theirs is not None and theirs != service_of(package)


def _closure(start: Target, graph: dict[str, Target]) -> Iterator[tuple[str, str]]:
    """(label, the label it was reached from) for everything `start` depends on."""
    seen = {start.label}
    stack = [start]
    while stack:
        current = stack.pop()
        for label in sorted(current.deps | current.data):
            if label in seen:
                continue
            seen.add(label)
            yield label, current.label
            if label in graph:
                stack.append(graph[label])


def check(packages: Iterable[Package], sources: dict[str, str]) -> list[str]:
    """Every violation of the four rules; `sources` maps a .py path to its text."""
    packages = list(packages)
    graph = {label: t for p in packages for label, t in p.targets.items()}
    problems: list[str] = []
    for package in packages:
        if service_of(package.name) is not None and package.default_visibility not in (
            [],
            ["//visibility:private"],
        ):
            problems.append(
                f"{package.name}/BUILD.bazel: default_visibility {package.default_visibility}; "
                "a service's targets are private unless one names who may use it"
            )
        if not _guarded(package.name):
            continue
        for target in package.targets.values():
            if not target.testonly:
                for label, via in _closure(target, graph):
                    if _foreign(package.name, label):
                        problems.append(f"{target.label} depends on {label} (via {via})")
                        break
                continue
            for label in sorted(target.deps):
                dep = graph.get(label)
                if _foreign(package.name, label) and not (dep is not None and dep.testonly):
                    problems.append(
                        f"{target.label} depends on {label}: a test may use another "
                        "service's testonly harness, not its code"
                    )
            for label in sorted(target.data):
                dep = graph.get(label)
                if _foreign(package.name, label) and not (
                    dep is not None and dep.kind == "py_binary"
                ):
                    problems.append(
                        f"{target.label} has {label} as data: only another service's "
                        "binary may be, run as a process"
                    )
    production = {
        src for p in packages for t in p.targets.values() if not t.testonly for src in t.srcs
    }
    for path, text in sorted(sources.items()):
        directory = str(Path(path).parent)
        if path not in production or not _guarded(directory):
            continue
        for service in sorted(imported_services(text) - {service_of(directory)}):
            problems.append(f"{path} imports services.{service}")
    return problems


def load(paths: Iterable[str], root: Path = Path()) -> tuple[list[Package], dict[str, str]]:
    """Packages (from BUILD.bazel files) and Python sources among `paths`."""
    packages: list[Package] = []
    sources: dict[str, str] = {}
    for path in paths:
        text = (root / path).read_text()
        if Path(path).name == "BUILD.bazel":
            packages.append(parse_build(text, str(Path(path).parent)))
        elif path.endswith(".py"):
            sources[path] = text
    return packages, sources


def main(argv: list[str]) -> int:
    problems = check(*load(argv))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} service dependency problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
