"""The no-shell check tells "no shell in the image" from "podman could not start".

Both exit 127 under podman, which is how a missing iptables once passed for a
missing shell. The stderr samples are podman 4.3 + runc's own words.
"""

from __future__ import annotations

import subprocess

from tests.images.images import not_found

SH = "/bin/sh"  # externals: not run here (the path podman looked for in the image)

NOT_FOUND = (
    "Error: runc: runc create failed: unable to start container process: "
    'exec: "/bin/sh": '  # externals: not run here
    "stat /bin/sh: no such file or directory: OCI runtime attempted to invoke a command "
    "that was not found\n"
)
NO_IPTABLES = (
    'Error: plugin type="bridge" failed (add): cni plugin bridge failed: failed to locate '
    'iptables: exec: "iptables": executable file not found in $PATH\n'
)
PERMISSION = (
    "Error: runc: runc create failed: unable to start container process: "
    'exec: "/bin/sh": '  # externals: not run here
    "permission denied: OCI permission denied\n"
)


def result(code: int, stderr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["podman"], code, "", stderr)


def test_the_runtimes_not_found_for_that_path_is_not_found() -> None:
    assert not_found(result(127, NOT_FOUND), SH)


def test_a_network_plugin_failure_with_the_same_status_is_not() -> None:
    assert not not_found(result(127, NO_IPTABLES), SH)


def test_another_path_or_status_is_not() -> None:
    assert not not_found(result(127, NOT_FOUND), SH.replace("sh", "bash"))
    assert not not_found(result(126, PERMISSION), SH)
    assert not not_found(result(125, NOT_FOUND), SH)
