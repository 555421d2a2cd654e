"""`bazel run` of an oci_push target: pushes by digest, then tags.

Usage: push.py LAYOUT --digest-file F [--repository R]... [--default-tag T]... [--tag T]...

The last --repository wins, so `bazel run :push -- --repository R` overrides
the BUILD file's. Tags: --tag replaces the BUILD file's --default-tag list.
The manifest (or index) goes up as `R@sha256:...` first, so what is promoted
is exactly the digest the build computed; tags then point at that digest.
skopeo does the transfer with `--all`: of an index, every platform's manifest
and blobs go up too, each under its own digest, and a tag names the index,
not the pushing machine's platform. Its usual auth files apply; loopback
registries get plain HTTP.
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
import sys
from pathlib import Path

# By the path its Debian package installs (tools/setup), not the caller's PATH.
SKOPEO = "/usr/bin/skopeo"


def is_loopback(repository: str) -> bool:
    host = repository.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def copy(source: str, destination: str, plain_http: bool) -> None:
    flags = ["--src-tls-verify=false", "--dest-tls-verify=false"] if plain_http else []
    subprocess.run(
        [SKOPEO, "copy", "--quiet", "--all", "--preserve-digests", *flags, source, destination],
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("layout", type=Path)
    parser.add_argument("--digest-file", type=Path, required=True)
    parser.add_argument("--repository", action="append", default=[])
    parser.add_argument("--default-tag", action="append", default=[])
    parser.add_argument("--tag", action="append", default=[])
    args = parser.parse_args()
    if not args.repository:
        raise SystemExit("no repository: bazel run <target> -- --repository HOST/NAME")
    repository = args.repository[-1]
    if "@" in repository or ":" in repository.rsplit("/", 1)[-1]:
        raise SystemExit(f"--repository {repository}: give a name without tag or digest")
    digest = args.digest_file.read_text().strip()
    plain_http = is_loopback(repository)
    copy(f"oci:{args.layout.resolve()}", f"docker://{repository}@{digest}", plain_http)
    print(f"pushed {repository}@{digest}")
    for tag in args.tag or args.default_tag:
        copy(f"docker://{repository}@{digest}", f"docker://{repository}:{tag}", plain_http)
        print(f"tagged {repository}:{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
