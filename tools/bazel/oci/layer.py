"""Writes one image layer (a gzipped tar) from a JSON spec, reproducibly.

Usage: layer.py SPEC.json OUT.tar.gz

The spec (written by the rules in tools/bazel/image.bzl and deb.bzl) lists:
- `files`: {"path", "src", "mode"?, "uid"?, "gid"?}: a file's content at a path;
- `dirs`: {"path", "mode", "uid", "gid"}; `symlinks`: {"path", "target"};
- `debs`: Debian packages whose data.tar is merged in (see `deb` options);
- `missing_wheels`: {"target", "platform", "lock", "packages"}: packages an
  image for another platform needs but has no wheel of: the layer is refused.

Whatever the inputs' order, mtimes, owners or location, the output is the
same bytes: entries sorted by path, mtime 0, numeric owners without names,
normalised modes, parent directories made explicit, gzip without a name or
timestamp. Source paths never reach the archive.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import stat
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bazel.deb.control import control_file, member_tar, parse_stanza

# Directories that Debian merged into /usr (bookworm's default layout).
USRMERGE = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
GZIP_LEVEL = 6


@dataclass
class Entry:
    """One archive member, independent of where its content came from."""

    path: str
    kind: bytes  # tarfile.REGTYPE, DIRTYPE, SYMTYPE or LNKTYPE
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    target: str = ""
    origin: str = field(default="", compare=False)


def normalize(path: str) -> str:
    """`./usr//bin/` → `usr/bin`; rejects paths that climb out of the root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SystemExit(f"path {path!r} leaves the image root")
    return "/".join(parts)


def usrmerge(path: str) -> str:
    """`lib/x86_64-linux-gnu/libc.so.6` → `usr/lib/x86_64-linux-gnu/libc.so.6`."""
    top = path.split("/", 1)[0]
    return f"usr/{path}" if top in USRMERGE else path


class Layer:
    """Entries by path; adding a conflicting entry for a path is an error."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry, replace_dir: bool = False) -> None:
        entry.path = normalize(entry.path)
        if not entry.path:
            return
        old = self.entries.get(entry.path)
        if old is not None and old != entry:
            both_dirs = old.kind == entry.kind == tarfile.DIRTYPE
            if not both_dirs:
                raise SystemExit(
                    f"{entry.path}: {entry.origin or 'spec'} conflicts with {old.origin or 'spec'}"
                )
            if not replace_dir:
                return
        self.entries[entry.path] = entry

    def add_parents(self) -> None:
        """Every directory on the way to an entry exists as an entry of its own."""
        for path in list(self.entries):
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                parent = "/".join(parts[:depth])
                if parent not in self.entries:
                    self.entries[parent] = Entry(parent, tarfile.DIRTYPE, 0o755)

    def write(self, out: Path) -> None:
        self.add_parents()
        with (
            out.open("wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
            ) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
        ):
            for path in sorted(self.entries):
                entry = self.entries[path]
                info = tarfile.TarInfo(path)
                info.type = entry.kind
                info.mode = entry.mode
                info.uid, info.gid = entry.uid, entry.gid
                info.uname = info.gname = ""
                info.mtime = 0
                if entry.kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    info.linkname = entry.target
                if entry.kind == tarfile.REGTYPE:
                    info.size = len(entry.data)
                    archive.addfile(info, io.BytesIO(entry.data))
                else:
                    archive.addfile(info)


def file_mode(src: Path, mode: int | None) -> int:
    """An explicit mode, else 0755 for an executable input and 0644 for any other."""
    if mode is not None:
        return mode
    return 0o755 if src.stat().st_mode & stat.S_IXUSR else 0o644


def add_deb(layer: Layer, deb: Path, options: dict[str, Any]) -> None:
    """Merges a package's data.tar, the way dpkg would unpack it (no scripts)."""
    drop = options.get("drop", [])
    keep = options.get("keep", [])
    merged = options.get("usrmerge", True)

    def rename(name: str) -> str:
        path = normalize(name)
        return usrmerge(path) if merged else path

    def dropped(path: str) -> bool:
        if any(fnmatch.fnmatch(path, pattern) for pattern in keep):
            return False
        return any(path == d or path.startswith(d + "/") for d in drop)

    fields = parse_stanza(control_file(deb))
    origin = f"{fields['Package']}.deb"
    with member_tar(deb, "data") as archive:
        for member in archive.getmembers():
            path = rename(member.name)
            if not path or dropped(path):
                continue
            mode, target, data = stat.S_IMODE(member.mode), "", b""
            if member.isdir():
                kind = tarfile.DIRTYPE
            elif member.issym():
                kind, mode, target = tarfile.SYMTYPE, 0o777, member.linkname
            elif member.islnk():
                kind, target = tarfile.LNKTYPE, rename(member.linkname)
            elif member.isfile():
                kind = tarfile.REGTYPE
                extracted = archive.extractfile(member)
                assert extracted is not None
                data = extracted.read()
            else:
                raise SystemExit(f"{origin}: {member.name} is a device or fifo")
            layer.add(Entry(path, kind, mode, member.uid, member.gid, data, target, origin))
    status_dir = options.get("status_dir")
    if status_dir:
        # distroless's convention: scanners read one control file per package here.
        status = control_file(deb).rstrip("\n") + "\n"
        layer.add(
            Entry(
                f"{status_dir}/{fields['Package']}",
                tarfile.REGTYPE,
                0o644,
                data=status.encode(),
                origin=origin,
            )
        )


def add_ca_bundle(layer: Layer, bundle: str, source_dir: str) -> None:
    """What update-ca-certificates would write: every certificate, concatenated in order."""
    prefix = normalize(source_dir) + "/"
    certs = sorted(
        p
        for p, e in layer.entries.items()
        if p.startswith(prefix) and p.endswith(".crt") and e.kind == tarfile.REGTYPE
    )
    if not certs:
        raise SystemExit(f"no certificates under {source_dir} for {bundle}")
    data = b"".join(layer.entries[p].data.rstrip(b"\n") + b"\n" for p in certs)
    layer.add(Entry(bundle, tarfile.REGTYPE, 0o644, data=data, origin="ca bundle"))


def refuse_missing_wheels(missing: dict[str, Any]) -> None:
    """Stops the build, naming every package the platform has no (matching) wheel of."""
    raise SystemExit(
        f"{missing['target']}: no {missing['platform']} wheel for "
        + ", ".join(missing["packages"])
        + f" in {missing['lock'] or 'the platform lock'}. Pick versions that publish one "
        "(bazel run //:requirements.update lists the gaps as `# no ... wheel:` lines), "
        "or leave the package out of this image."
    )


def build(spec: dict[str, Any]) -> Layer:
    if spec.get("missing_wheels"):
        refuse_missing_wheels(spec["missing_wheels"])
    layer = Layer()
    deb_options = spec.get("deb", {})
    for deb in spec.get("debs", []):
        add_deb(layer, Path(deb["src"]), deb_options)
    if deb_options.get("ca_bundle"):
        add_ca_bundle(layer, deb_options["ca_bundle"], deb_options["ca_source_dir"])
    for item in spec.get("files", []):
        src = Path(item["src"])
        layer.add(
            Entry(
                item["path"],
                tarfile.REGTYPE,
                file_mode(src, item.get("mode")),
                item.get("uid", 0),
                item.get("gid", 0),
                data=src.read_bytes(),
                origin=item.get("short", item["src"]),
            )
        )
    for item in spec.get("symlinks", []):
        layer.add(Entry(item["path"], tarfile.SYMTYPE, 0o777, target=item["target"]))
    for item in spec.get("dirs", []):
        entry = Entry(item["path"], tarfile.DIRTYPE, item["mode"], item["uid"], item["gid"])
        layer.add(entry, replace_dir=True)
    return layer


def main() -> int:
    spec_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    build(json.loads(spec_path.read_text())).write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
