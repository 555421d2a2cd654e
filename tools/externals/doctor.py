"""tools/doctor: what the build and tests use from outside the repository, and
a rehearsal of a fresh machine.

    tools/doctor            check every external program (tools/doctor/externals.py):
                            present at its path, owned by the package tools/setup
                            names, reachable without the caller's PATH
    tools/doctor rehearse --yes
                            make this machine look fresh for everything setup
                            provides, then run .ci/run in a new clone of HEAD

Standard library only, so it runs before setup has installed anything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tools.externals` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.externals.externals import (
    CLUSTER_BUILD,
    EXTERNALS,
    External,
    cluster_tools,
    setup_apt_packages,
    setup_go_tools,
)

REPO = Path(__file__).resolve().parents[2]
DPKG_QUERY = "/usr/bin/dpkg-query"

# State a run of setup or the tests leaves behind, that a fresh machine lacks.
LEFTOVER_STATE = (
    Path("/var/tmp/syncbridge"),  # noqa: S108 - tools/servers' state dir, removed on purpose
    Path("/var/lib/containers"),  # podman's storage: loaded images, CNI network config
    Path("/run/containers"),
    Path("/var/lib/cni"),  # CNI's cache of networks and IP allocations
    Path.home() / ".config" / "containers",
    Path.home() / ".local" / "share" / "containers",
    Path.home() / ".cache" / "bazel",  # every output base: fetched wheels, .debs, test results
    Path.home() / "go" / "pkg" / "mod",  # Go module cache
    Path.home() / ".cache" / "go-build",  # Go build cache
)


def owner(path: Path) -> str | None:
    """The Debian package that installed `path` (alternatives resolved), or None."""
    real = path.resolve()
    for candidate in (str(path), str(real)):
        result = subprocess.run(
            [DPKG_QUERY, "-S", candidate], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def problems(externals: tuple[External, ...], setup_text: str, repo: Path) -> list[str]:
    """What is wrong with each external on this machine; empty when all is well."""
    apt = setup_apt_packages(setup_text)
    build = repo / CLUSTER_BUILD
    go = setup_go_tools(setup_text) | cluster_tools(
        setup_text, build.read_text() if build.is_file() else ""
    )
    found: list[str] = []
    for item in externals:
        path = repo / item.path if not item.path.startswith("/") else Path(item.path)
        if item.source == "apt" and item.package not in apt:
            found.append(f"{item.path}: tools/setup does not install {item.package}")
        if item.source == "go" and item.package not in go:
            found.append(f"{item.path}: tools/setup does not build {item.package}")
        if not os.access(path, os.X_OK):
            found.append(f"{item.path}: missing or not executable ({item.why}); run tools/setup")
            continue
        if item.source == "apt":
            want = item.owner or item.package
            got = owner(path)
            if got != want:
                found.append(f"{item.path}: installed by {got or 'nothing dpkg knows'}, not {want}")
    return found


def check() -> int:
    setup_text = (REPO / "tools" / "setup").read_text()
    found = problems(EXTERNALS, setup_text, REPO)
    for item in EXTERNALS:
        print(f"{item.path:44} {item.source:5} {item.package:28} {item.why}")
    if found:
        print("\n".join(["", "problems:", *found]), file=sys.stderr)
        return 1
    print(f"\n{len(EXTERNALS)} externals present, each from what tools/setup names.")
    return 0


def apt_installed(names: set[str]) -> list[str]:
    result = subprocess.run(
        [DPKG_QUERY, "-W", "-f=${Package} ${db:Status-Abbrev}\\n", *sorted(names)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line.split()[0] for line in result.stdout.splitlines() if line.split()[1:2] == ["ii"]]


BASE_IMAGE = Path(__file__).with_name("base_image_packages.txt")


def base_image_packages() -> set[str]:
    """What a new machine has before setup: never purged, setup did not bring it."""
    lines = BASE_IMAGE.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


GO_CACHES = (Path.home() / "go" / "pkg" / "mod", Path.home() / ".cache" / "go-build")


def rehearse(assume_yes: bool, keep_go_cache: bool = False) -> int:
    """Purges what setup installs and every state a run leaves, then runs CI fresh."""
    setup_text = (REPO / "tools" / "setup").read_text()
    packages = apt_installed(setup_apt_packages(setup_text) - base_image_packages())
    print("purge Debian packages:", " ".join(packages) or "(none installed)")
    print("remove state:", *(str(p) for p in LEFTOVER_STATE), sep="\n  ")
    print("remove apt lists: /var/lib/apt/lists/*")
    if not assume_yes:
        print(
            "\nnothing done: pass --yes (this stops the project's servers and podman's containers)"
        )
        return 2
    # Cloned first: git itself may be among the packages purged.
    clone = Path(tempfile.mkdtemp(prefix="syncbridge-fresh-")) / "syncbridge"
    subprocess.run(["/usr/bin/git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    servers = REPO / "tools" / "servers" / "servers.py"
    subprocess.run([sys.executable, str(servers), "stop"], check=False)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if packages:
        subprocess.run(["/usr/bin/apt-get", "purge", "-y", "-qq", *packages], env=env, check=True)
        subprocess.run(
            ["/usr/bin/apt-get", "autoremove", "--purge", "-y", "-qq"], env=env, check=True
        )
    for path in LEFTOVER_STATE:
        if keep_go_cache and path in GO_CACHES:
            continue  # content-addressed: kept, they change setup's time, not its result
        shutil.rmtree(path, ignore_errors=True)
    for lists in Path("/var/lib/apt/lists").glob("*_*"):
        lists.unlink(missing_ok=True)
    print(f"fresh clone: {clone}; running .ci/run", flush=True)
    return subprocess.run(["/bin/bash", ".ci/run"], cwd=clone, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="check", choices=["check", "rehearse"])
    parser.add_argument("--yes", action="store_true", help="rehearse: really purge and remove")
    parser.add_argument(
        "--keep-go-cache",
        action="store_true",
        help="rehearse: keep Go's module and build caches (a cold build adds ~20 min)",
    )
    args = parser.parse_args(argv)
    return check() if args.command == "check" else rehearse(args.yes, args.keep_go_cache)


if __name__ == "__main__":
    sys.exit(main())
