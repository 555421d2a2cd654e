"""Writes an image's SBOM (SPDX 2.3 JSON) from the locks it was built from.

Usage: sbom.py SPEC.json OUT.spdx.json

SPEC (written by spdx_sbom in tools/bazel/sbom.bzl): `name`, `digest` (the
image's digest file), `deb_lock` (packages.<arch>.lock: every package of the
base), `wheel_lock` (the lock of the image's wheel platform) and `packages`
(the wheel layer's manifest: the wheels it ships, with versions). Each .deb
and wheel is listed with its version, the sha256 its lock pins (the one the
build checked), and a package URL; the document is a function of those
inputs alone (no clock, no paths), so it is as reproducible as the image.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

CREATED = "1970-01-01T00:00:00Z"  # a build's SBOM must not depend on when it ran


def spdx_id(kind: str, name: str) -> str:
    """An SPDX identifier: letters, digits, '.' and '-' only."""
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_deb_lock(path: Path) -> list[tuple[str, str, str, str]]:
    """(name, version, arch, sha256) of each line of a packages.<arch>.lock."""
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, arch, sha256 = line.split()
            entries.append((name, version, arch, sha256))
    return entries


def read_wheel_lock(path: Path) -> dict[str, tuple[str, str]]:
    """{normalized name: (version, sha256)} of a requirements lock."""
    pins: dict[str, tuple[str, str]] = {}
    spec = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:") and spec:
            name, _, version = spec.partition("==")
            pins[normalize(name.split("[", 1)[0])] = (version, stripped.split(":", 1)[1])
        elif stripped and not stripped.startswith("#"):
            spec = stripped.split()[0]
    return pins


def package(
    kind: str, name: str, version: str, sha256: str, purl: str, supplier: str
) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id(kind, name),
        "checksums": [{"algorithm": "SHA256", "checksumValue": sha256}],
        "downloadLocation": "NOASSERTION",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceLocator": purl,
                "referenceType": "purl",
            }
        ],
        "filesAnalyzed": False,
        "name": name,
        "supplier": supplier,
        "versionInfo": version,
    }


def document(spec: dict[str, Any]) -> dict[str, Any]:
    digest = Path(spec["digest"]["src"]).read_text().strip()
    image_id = "SPDXRef-Image"
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": image_id,
            "checksums": [{"algorithm": "SHA256", "checksumValue": digest.removeprefix("sha256:")}],
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "name": spec["name"],
            "primaryPackagePurpose": "CONTAINER",
            "versionInfo": digest,
        }
    ]
    for name, version, arch, sha256 in read_deb_lock(Path(spec["deb_lock"]["src"])):
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12"
        packages.append(package("deb", name, version, sha256, purl, "Organization: Debian"))
    pins = read_wheel_lock(Path(spec["wheel_lock"]["src"]))
    shipped = json.loads(Path(spec["packages"]["src"]).read_text())["wheels"]
    for wheel in shipped:
        name = normalize(wheel["name"])
        if name not in pins or pins[name][0] != wheel["version"]:
            raise SystemExit(
                f"{spec['name']}: ships {name} {wheel['version']}, "
                f"but {spec['wheel_lock']['short']} pins {pins.get(name, ('nothing',))[0]}"
            )
        purl = f"pkg:pypi/{name}@{wheel['version']}"
        packages.append(
            package("wheel", name, wheel["version"], pins[name][1], purl, "NOASSERTION")
        )
    relationships = [
        {
            "relatedSpdxElement": image_id,
            "relationshipType": "DESCRIBES",
            "spdxElementId": "SPDXRef-DOCUMENT",
        }
    ] + [
        {
            "relatedSpdxElement": p["SPDXID"],
            "relationshipType": "CONTAINS",
            "spdxElementId": image_id,
        }
        for p in packages[1:]
    ]
    return {
        "SPDXID": "SPDXRef-DOCUMENT",
        "creationInfo": {"created": CREATED, "creators": ["Tool: syncbridge-tools-bazel-oci-sbom"]},
        "dataLicense": "CC0-1.0",
        "documentNamespace": f"https://spdx.harmonyflow.io/syncbridge/{spec['name']}/{digest}",
        "name": spec["name"],
        "packages": packages,
        "relationships": relationships,
        "spdxVersion": "SPDX-2.3",
    }


def main() -> int:
    spec_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.write_text(
        json.dumps(document(json.loads(spec_path.read_text())), indent=1, sort_keys=True)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
