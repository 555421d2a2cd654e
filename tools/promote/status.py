"""`promote status`: which digest each environment runs, and how far behind it is.

Read from git history alone: the releases of a service are the distinct
digests its dev overlay has pinned, in the order they first appeared. An
environment running release i of n is n-1-i releases behind the newest; a
digest that never went through dev is reported as such (someone edited an
overlay by hand).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from tools.promote import layout, overlay
from tools.promote.changes import short
from tools.promote.gitrepo import Repo


@dataclass(frozen=True)
class Row:
    service: str
    environment: str
    digest: str | None
    behind: int | None  # None: the digest is not one of dev's releases
    releases: int


def releases(repo: Repo, rev: str, svc: layout.Service) -> list[str]:
    """Distinct digests of `svc`'s image in its dev overlay, oldest first."""
    path = svc.overlay(layout.ENVIRONMENTS[0])
    shas = repo.git("log", "--reverse", "--format=%H", rev, "--", path).split()
    seen: list[str] = []
    for sha in shas:
        text = repo.show(sha, path)
        if text is None:
            continue
        try:
            digest = overlay.digests(text, path).get(svc.image)
        except overlay.OverlayError:
            continue  # a historical revision may predate the contract
        if digest is not None and digest not in seen:
            seen.append(digest)
    return seen


def rows(repo: Repo, rev: str = "HEAD") -> list[Row]:
    result = []
    for svc in layout.SERVICES.values():
        history = releases(repo, rev, svc)
        for env in layout.ENVIRONMENTS:
            text = repo.show(rev, svc.overlay(env))
            digest = overlay.digests(text).get(svc.image) if text is not None else None
            behind = len(history) - 1 - history.index(digest) if digest in history else None
            result.append(Row(svc.name, env, digest, behind, len(history)))
    return result


def render(table: list[Row]) -> str:
    lines = [f"{'SERVICE':<14}{'ENV':<9}{'DIGEST':<21}BEHIND"]
    for r in table:
        shown = short(r.digest) if r.digest else "(no overlay)"
        behind = "not a release" if r.behind is None else str(r.behind)
        lines.append(f"{r.service:<14}{r.environment:<9}{shown:<21}{behind}")
    return "\n".join(lines) + "\n"


def render_json(table: list[Row]) -> str:
    return json.dumps([asdict(r) for r in table], indent=2) + "\n"
