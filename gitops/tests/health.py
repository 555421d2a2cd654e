"""Runs an argocd-cm health check the way Argo CD does: gopher-lua, `obj` bound, `hs` returned."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PREFIX = "resource.customizations.health."


def checks(argocd_cm: dict[str, Any]) -> dict[str, str]:
    """`group_Kind` -> Lua source, for every health customization in an argocd-cm ConfigMap."""
    data = argocd_cm.get("data") or {}
    return {key[len(PREFIX) :]: str(value) for key, value in data.items() if key.startswith(PREFIX)}


def lua_literal(value: Any) -> str:
    """A Lua expression for a JSON-like value (what Argo CD hands its scripts as `obj`)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid Lua escapes for the characters used here.
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, dict):
        fields = (f"[{json.dumps(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(fields) + "}"
    raise TypeError(f"no Lua form for {type(value).__name__}")


def run(glua: Path, script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the script returns for `obj`."""
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local function check()\n{script}\nend\n"
        "local hs = check()\n"
        'print(hs.status .. "\\t" .. tostring(hs.message))\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(program)
    try:
        proc = subprocess.run(
            [str(glua), file.name], capture_output=True, text=True, check=False, timeout=30
        )
    finally:
        Path(file.name).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"glua failed: {proc.stdout}{proc.stderr}")
    status, _, message = proc.stdout.rstrip("\n").partition("\t")
    return status, message
