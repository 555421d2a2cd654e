"""Each image's SBOM lists exactly what the image holds: every .deb and wheel, version and hash.

Read from the image itself, not from the build's inputs: the .debs from the
control files in /var/lib/dpkg/status.d (one per unpacked package, see
deb_layer), the wheels from their .dist-info METADATA in dist-packages, and
every file a wheel's RECORD lists must be in the image with the hash RECORD
gives (so the wheel named is the one installed). The SBOM's hashes must be
the ones the locks pin, which the fetches checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tarfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest

from tests.images.images import ARM64_IMAGES, IMAGES, Image, runfile

STATUS_DIR = "var/lib/dpkg/status.d/"
SITE = "usr/local/lib/python3.11/dist-packages/"
LOCKS = {
    "amd64": ("third_party/debian/packages.amd64.lock", "requirements_lock.txt"),
    "arm64": (
        "third_party/debian/packages.arm64.lock",
        "requirements_lock_linux_aarch64.txt",
    ),
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_files(image: Image) -> dict[str, bytes]:
    """Contents of the status files and the installed wheels' files, upper layers winning."""
    files: dict[str, bytes] = {}
    for _, tar in image.layers():
        for member in tar:
            if member.isfile() and member.name.startswith((STATUS_DIR, SITE)):
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
            elif member.type == tarfile.SYMTYPE and member.name.startswith(SITE):
                files[member.name] = b""
    return files


def sbom(image: Image) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        runfile(f"{image.package}/{image.target}_sbom.spdx.json").read_text()
    )
    return loaded


def sbom_packages(document: dict[str, Any], kind: str) -> dict[str, tuple[str, str]]:
    """{name: (version, sha256)} of the SBOM's packages of a kind (deb, wheel)."""
    found = {}
    for package in document["packages"]:
        if package["SPDXID"].startswith(f"SPDXRef-{kind}-"):
            (checksum,) = package["checksums"]
            assert checksum["algorithm"] == "SHA256"
            found[package["name"]] = (package["versionInfo"], checksum["checksumValue"])
    return found


def wheel_pins(lock: Path) -> dict[str, tuple[str, str]]:
    pins, spec = {}, ""
    for line in lock.read_text().splitlines():
        line = line.strip()
        if line.startswith("--hash=sha256:"):
            name, _, version = spec.partition("==")
            pins[normalize(name.split("[", 1)[0])] = (version, line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            spec = line.split()[0]
    return pins


def record_problems(files: dict[str, bytes], dist_info: str) -> list[str]:
    """Files of the wheel's RECORD missing from the image or differing from their hash."""
    problems = []
    for row in files[dist_info + "RECORD"].decode().splitlines():
        path, digest, _ = row.rsplit(",", 2)
        if not digest or path.endswith(".pyc") or " " in path:
            continue  # RECORD itself; bytecode and names with spaces are never shipped
        content = files.get(SITE + path)
        if content is None:
            problems.append(f"{path}: in RECORD, not in the image")
            continue
        algorithm, _, expected = digest.partition("=")
        actual = base64.urlsafe_b64encode(hashlib.new(algorithm, content).digest()).rstrip(b"=")
        if actual.decode() != expected:
            problems.append(f"{path}: content differs from RECORD")
    return problems


@pytest.mark.parametrize("image", IMAGES + ARM64_IMAGES, ids=lambda i: f"{i.name}-{i.target}")
def test_sbom_matches_the_image(image: Image) -> None:
    document = sbom(image)
    assert document["spdxVersion"] == "SPDX-2.3"
    (described,) = [p for p in document["packages"] if p["SPDXID"] == "SPDXRef-Image"]
    assert described["versionInfo"] == image.digest
    architecture = image.config()["architecture"]
    deb_lock, wheel_lock = (runfile(path) for path in LOCKS[architecture])
    files = image_files(image)

    debs = {}
    for path, content in files.items():
        if path.startswith(STATUS_DIR):
            fields = HeaderParser().parsestr(content.decode())
            assert fields["Architecture"] in (architecture, "all"), path
            debs[fields["Package"]] = fields["Version"]
    listed_debs = sbom_packages(document, "deb")
    assert {n: v for n, (v, _) in listed_debs.items()} == debs
    pinned = {
        line.split()[0]: line.split()[3]
        for line in deb_lock.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {n: h for n, (_, h) in listed_debs.items()} == pinned

    wheels = {}
    problems = []
    for path in files:
        match = re.fullmatch(re.escape(SITE) + r"([^/]+\.dist-info)/METADATA", path)
        if match:
            fields = HeaderParser().parsestr(files[path].decode())
            wheels[normalize(fields["Name"])] = fields["Version"]
            problems += record_problems(files, SITE + match.group(1) + "/")
    assert not problems, problems[:20]
    listed_wheels = sbom_packages(document, "wheel")
    assert {n: v for n, (v, _) in listed_wheels.items()} == wheels
    pins = wheel_pins(wheel_lock)
    assert {n: pins[n] for n in wheels} == listed_wheels
