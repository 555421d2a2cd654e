"""The arm64 images are arm64: every ELF file is aarch64, and their own Python runs the service.

No relabelled amd64 image can pass: the ELF scan reads each binary's own
e_machine, and the run starts the image's aarch64 python3.11 under Debian's
qemu-user-static, directly against the unpacked root (`-L`: the image's
dynamic loader and libraries, no binfmt registration, no host Python), which
then imports the service's main module with the image's wheels (grpcio's and
others' native extensions among them) and runs its entrypoint's `--help`.
The amd64 images are scanned the same way, as the control.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from tests.images.images import ARM64_IMAGES, IMAGES, Image, unpack

QEMU = "/usr/bin/qemu-aarch64-static"
EM_X86_64, EM_AARCH64 = 62, 183
# Emulated start-up of a whole service is slow on a busy 2-core machine.
TIMEOUT = 420

# Run by the image's own interpreter: imports the entry module, then lists the
# native extension modules that import loaded, and where each came from.
PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
native = sorted({m.__file__ for m in list(sys.modules.values())
                 if (getattr(m, "__file__", None) or "").endswith(".so")})
machine = __import__("platform").machine()
print(json.dumps({"module": module.__file__, "native": native, "machine": machine}))
"""


def elf_machines(root: Path) -> dict[str, int]:
    """{path below root: e_machine} of every regular ELF file."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as handle:
                header = handle.read(20)
            if header[:4] == b"\x7fELF" and len(header) == 20:
                endian = "<" if header[5] == 1 else ">"
                (machine,) = struct.unpack(endian + "H", header[18:20])
                found[str(path.relative_to(root))] = machine
    return found


def entrypoint(image: Image) -> list[str]:
    return list(image.config()["config"]["Entrypoint"])


def emulate(root: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs an absolute in-image program under qemu, with the image's root as its /."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "app"), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(
        [QEMU, "-L", str(root), str(root) + argv[0], *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("image", IMAGES + ARM64_IMAGES, ids=lambda i: f"{i.name}-{i.target}")
def test_every_elf_file_is_for_the_image_architecture(image: Image, tmp_path: Path) -> None:
    # What the target is for, not what its config says: a relabelled image must fail.
    architecture = "arm64" if image.target.endswith("_arm64") else "amd64"
    assert image.config()["architecture"] == architecture
    want = {"amd64": EM_X86_64, "arm64": EM_AARCH64}[architecture]
    machines = elf_machines(unpack(image, tmp_path / "root"))
    assert len(machines) > 50, f"only {len(machines)} ELF files: is this the whole image?"
    wrong = sorted(f"{path} (e_machine {m})" for path, m in machines.items() if m != want)
    assert not wrong, f"{image.target} is {architecture}, but: {wrong[:20]}"
    assert "usr/bin/python3.11" in machines


@pytest.mark.parametrize("image", ARM64_IMAGES, ids=lambda i: i.name)
def test_the_images_own_python_imports_the_service_under_emulation(
    image: Image, tmp_path: Path
) -> None:
    root = unpack(image, tmp_path / "root")
    # An empty working directory: nothing but the image's own files can be imported.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    python, flag, module = entrypoint(image)
    assert flag == "-m", entrypoint(image)
    probe = emulate(root, [python, "-c", PROBE, module], cwd)
    assert probe.returncode == 0, probe.stderr[-3000:]
    loaded = json.loads(probe.stdout.strip().splitlines()[-1])
    assert loaded["machine"] == "aarch64"
    assert loaded["module"].startswith(str(root / "app") + "/"), loaded["module"]
    assert loaded["native"], "the service imported no native extension: are the wheels there?"
    outside = [path for path in loaded["native"] if not path.startswith(str(root) + "/")]
    assert not outside, f"native modules from outside the image: {outside}"
    assert any("aarch64-linux-gnu" in path for path in loaded["native"]), loaded["native"]

    helped = emulate(root, [*entrypoint(image), "--help"], cwd)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "SYNCBRIDGE_" in helped.stdout, helped.stdout[-2000:]
