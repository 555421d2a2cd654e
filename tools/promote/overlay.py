"""Read and rewrite the `images:` digests of a kustomization.yaml, nothing else.

A release or promotion changes exactly one thing in an overlay: the `digest:`
of an `images:` entry (gitops contract). So this is a line editor, not a YAML
round-trip: every byte outside the digest values stays as it was (comments,
order, quoting, the other keys), and a review diff shows one line per image.
It understands the block-style list kustomize itself writes, indented or not:

    images:
      - name: registry.harmonyflow.io/syncbridge/ws-edge
        digest: sha256:<64 hex>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

_IMAGES_KEY = re.compile(r"^images:\s*(#.*)?$")
_TOP_LEVEL = re.compile(r"^[^\s#-]")
_ITEM_START = re.compile(r"^(?P<indent>\s*)-\s+(?P<rest>.*)$")
_KEY_VALUE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*):\s*(?P<value>.*?)\s*$")


class OverlayError(ValueError):
    """The file does not hold the `images:` entries the contract requires."""


@dataclass(frozen=True)
class ImageEntry:
    """One `images:` item: its name, digest and where the digest value sits."""

    name: str
    digest: str
    line: int  # index of the `digest:` line in the file's lines
    start: int  # column span of the digest value (quotes excluded)
    end: int


def is_digest(value: str) -> bool:
    """True for `sha256:` followed by 64 lowercase hex digits."""
    return DIGEST_RE.match(value) is not None


def _unquote(raw: str) -> tuple[str, int, int]:
    """The scalar without a trailing comment or quotes, and its span in `raw`."""
    if raw[:1] in ("'", '"'):
        close = raw.find(raw[0], 1)
        if close < 0:
            raise OverlayError(f"unterminated quote in {raw!r}")
        return raw[1:close], 1, close
    value = raw.split(" #", 1)[0].rstrip()
    return value, 0, len(value)


def parse(text: str, where: str = "kustomization.yaml") -> dict[str, ImageEntry]:
    """Every `images:` entry of `text` by name; each must pin a digest, no tag."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if _IMAGES_KEY.match(ln.rstrip("\r\n"))), None)
    if start is None:
        raise OverlayError(f"{where}: no top-level `images:` list")
    items: list[dict[str, tuple[str, int, int, int]]] = []
    item_indent = -1
    for index in range(start + 1, len(lines)):
        line = lines[index].rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _TOP_LEVEL.match(line):
            break  # the next top-level key ends the list
        item = _ITEM_START.match(line)
        if item is not None and (item_indent < 0 or len(item["indent"]) == item_indent):
            item_indent = len(item["indent"])
            items.append({})
            body, column = item["rest"], line.index(item["rest"])
        elif items:
            body, column = line.lstrip(), len(line) - len(line.lstrip())
        else:
            raise OverlayError(f"{where}:{index + 1}: `images:` must be a block list")
        pair = _KEY_VALUE.match(body)
        if pair is None:
            raise OverlayError(f"{where}:{index + 1}: expected `key: value`, got {body!r}")
        value, lo, hi = _unquote(pair["value"])
        offset = column + pair.start("value")
        items[-1][pair["key"]] = (value, index, offset + lo, offset + hi)
    entries: dict[str, ImageEntry] = {}
    for fields in items:
        if "name" not in fields:
            raise OverlayError(f"{where}: an `images:` entry has no name")
        name = fields["name"][0]
        if "newTag" in fields:
            raise OverlayError(f"{where}: {name} sets newTag; images are pinned by digest only")
        if "digest" not in fields:
            raise OverlayError(f"{where}: {name} has no digest")
        digest, line_no, lo, hi = fields["digest"]
        if not is_digest(digest):
            raise OverlayError(f"{where}: {name} digest {digest!r} is not sha256:<64 hex>")
        if name in entries:
            raise OverlayError(f"{where}: {name} is listed twice")
        entries[name] = ImageEntry(name, digest, line_no, lo, hi)
    if not entries:
        raise OverlayError(f"{where}: `images:` is empty")
    return entries


def digests(text: str, where: str = "kustomization.yaml") -> dict[str, str]:
    """Image name -> digest for every `images:` entry of `text`."""
    return {name: entry.digest for name, entry in parse(text, where).items()}


def set_digests(text: str, new: Mapping[str, str], where: str = "kustomization.yaml") -> str:
    """`text` with the digests of the named images replaced, every other byte kept.

    Every name in `new` must already be an entry: a promotion never adds an
    image an overlay does not deploy.
    """
    entries = parse(text, where)
    lines = text.splitlines(keepends=True)
    for name, digest in new.items():
        if not is_digest(digest):
            raise OverlayError(f"{name}: {digest!r} is not sha256:<64 hex>")
        entry = entries.get(name)
        if entry is None:
            raise OverlayError(f"{where}: has no `images:` entry for {name}")
        line = lines[entry.line]
        lines[entry.line] = line[: entry.start] + digest + line[entry.end :]
    return "".join(lines)
