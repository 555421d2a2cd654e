"""promote, release, rollback and status against temporary git repositories.

Over 400 lines: one test per documented behaviour of the four commands, in
sections, sharing the repository fixture and the session-wide validator.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tools.promote import health, layout
from tools.promote.changes import Code
from tools.promote.fake_argocd import FakeArgo
from tools.promote.testrepo import cli, commit_file, digest, git, make_repo
from tools.promote.validation import Tools, Validator, gitops_validator

EDGE = layout.SERVICES["ws-edge"]
CORE = layout.SERVICES["session-core"]


def tools() -> Tools:
    """The pinned tools and schemas, from the labels BUILD.bazel passes."""
    return Tools(
        kustomize=Path(os.environ["KUSTOMIZE"]).absolute(),
        kubeconform=Path(os.environ["KUBECONFORM"]).absolute(),
        opa=Path(os.environ["OPA"]).absolute(),
        schemas=Path(os.environ["KUBE_SCHEMAS_STAMP"]).absolute().parent,
    )


@pytest.fixture(scope="session")
def validator() -> Validator:
    """The gitops validator itself: kustomize, kubeconform -strict, the policies."""
    return gitops_validator(tools())


@pytest.fixture
def policies_dir() -> Path:
    """The repository's real policies/ (//policies:policies in the runfiles)."""
    return Path(os.environ["TEST_SRCDIR"]) / os.environ["TEST_WORKSPACE"] / "policies"


DEPLOYMENT_PATCH = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n{spec}"


@pytest.fixture(
    params=[
        # kustomize cannot apply it: the overlay has no such Deployment.
        ("render", DEPLOYMENT_PATCH.format(name="no-such-app", spec="  replicas: 2\n")),
        # kubeconform -strict: a field the Deployment schema does not have.
        ("schema", DEPLOYMENT_PATCH.format(name="ws-edge", spec="  replicaz: 2\n")),
        # policies/podsecurity: a privileged container.
        (
            "policy",
            DEPLOYMENT_PATCH.format(
                name="ws-edge",
                spec="  template:\n    spec:\n      containers:\n        - name: ws-edge\n"
                "          securityContext:\n            privileged: true\n",
            ),
        ),
    ],
    ids=lambda p: p[0],
)
def invalid_patch(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the check that must catch it, a staging patch the gitops tests reject)."""
    check, patch = request.param
    return check, patch


@pytest.fixture
def repo(tmp_path: Path, policies_dir: Path) -> Path:
    root = tmp_path / "repo"
    make_repo(root, policies_dir)
    return root


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def pinned(root: Path, rev: str, svc: layout.Service, env: str) -> str:
    text = git(root, "show", f"{rev}:{svc.overlay(env)}")
    line = next(ln for ln in text.splitlines() if "digest:" in ln)
    return line.split("digest:")[1].split()[0]


def trailers(root: Path, rev: str) -> dict[str, list[str]]:
    out = git(root, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    result: dict[str, list[str]] = {}
    for line in out.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            result.setdefault(key, []).append(value.strip())
    return result


def smoke_passed(root: Path, validator: Validator, env: str) -> None:
    code, out = cli(root, validator, "record-status", "--env", env, "--smoke", "passed")
    assert code == Code.OK, out


def release(root: Path, validator: Validator, edge: str, core: str) -> None:
    code, out = cli(
        root,
        validator,
        "release",
        "--digest",
        f"ws-edge={edge}",
        "--digest",
        f"session-core={core}",
    )
    assert code == Code.OK, out


def test_exit_codes_are_the_documented_ones() -> None:
    """CI and runbooks branch on these numbers (README.md): they never change."""
    assert {c.name: int(c) for c in Code} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "UP_TO_DATE": 3,
        "INVALID": 4,
        "DIRTY": 5,
        "UNHEALTHY": 6,
        "CONCURRENT": 7,
        "NOTHING_TO_ROLL_BACK": 8,
    }


# --- the happy path ---------------------------------------------------------


def test_chain_dev_to_staging_to_prod(repo: Path, validator: Validator) -> None:
    start = head(repo)
    release(repo, validator, digest("2"), digest("b"))
    released = head(repo)
    assert pinned(repo, released, EDGE, "dev") == digest("2")
    assert trailers(repo, released)["Released-To"] == ["dev"]
    assert trailers(repo, released)["Source-Commit"] == [start]

    smoke_passed(repo, validator, "dev")
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.OK, out
    promoted = head(repo)
    assert pinned(repo, promoted, EDGE, "staging") == digest("2")
    assert pinned(repo, promoted, CORE, "staging") == digest("b")
    t = trailers(repo, promoted)
    assert t["Promoted-From"] == ["dev"]
    assert t["Promoted-To"] == ["staging"]
    assert t["Source-Commit"] == [released]  # the commit that put the digests into dev
    assert sorted(t["Image-Digest"]) == sorted(
        [f"{EDGE.image}@{digest('2')}", f"{CORE.image}@{digest('b')}"]
    )
    body = git(repo, "log", "-1", "--format=%B", promoted)
    assert f"{digest('1')} → {digest('2')}" in body
    assert f"{digest('a')} → {digest('b')}" in body
    # Only the digest lines changed, every other byte of the overlay stayed.
    changed = git(repo, "diff", "--unified=0", released, promoted, "--", "gitops/apps")
    minus = [ln for ln in changed.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in changed.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert len(minus) == 2
    assert sorted(plus) == sorted(
        "+" + m[1:].replace("1" * 64, "2" * 64).replace("a" * 64, "b" * 64) for m in minus
    )
    assert git(repo, "status", "--porcelain") == ""  # work tree follows the commit

    smoke_passed(repo, validator, "staging")
    main_before = head(repo)
    code, out = cli(repo, validator, "--from", "staging", "--to", "prod")
    assert code == Code.OK, out
    assert head(repo) == main_before  # prod never lands on the current branch
    branch = f"promote/prod/session-core-{'b' * 12}+ws-edge-{'2' * 12}"
    assert f"git push origin {branch}" in out
    tip = git(repo, "rev-parse", f"refs/heads/{branch}").strip()
    assert git(repo, "rev-parse", f"{tip}^").strip() == main_before
    assert pinned(repo, tip, EDGE, "prod") == digest("2")
    assert trailers(repo, tip)["Promoted-To"] == ["prod"]
    # The same promotion again is already proposed on that branch.
    code, out = cli(repo, validator, "--from", "staging", "--to", "prod")
    assert code == Code.CONCURRENT and "already proposed" in out


def test_one_service_moves_alone(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--service", "ws-edge")
    assert code == Code.OK, out
    assert pinned(repo, "HEAD", EDGE, "staging") == digest("2")
    assert pinned(repo, "HEAD", CORE, "staging") == digest("a")


def test_dry_run_prints_the_diff_and_writes_nothing(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    before = head(repo)
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--dry-run")
    assert code == Code.OK, out
    assert f"-    digest: {digest('1')}  # set by tools/promote" in out
    assert f"+    digest: {digest('2')}  # set by tools/promote" in out
    assert "dry run: would commit to HEAD" in out
    assert head(repo) == before
    assert git(repo, "status", "--porcelain") == ""


def test_release_reads_the_image_digest_files(repo: Path, validator: Validator) -> None:
    for svc, d in ((EDGE, digest("3")), (CORE, digest("c"))):
        path = repo / svc.digest_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(d + "\n")
    code, out = cli(repo, validator, "release")
    assert code == Code.OK, out
    assert pinned(repo, "HEAD", EDGE, "dev") == digest("3")
    assert pinned(repo, "HEAD", CORE, "dev") == digest("c")
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"  # one commit


# --- refusals ----------------------------------------------------------------


def test_refuses_when_the_target_already_matches(repo: Path, validator: Validator) -> None:
    before = head(repo)
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.UP_TO_DATE
    assert "staging already runs dev's digests" in out
    code, out = cli(repo, validator, "release", "--digest", f"ws-edge={digest('1')}")
    assert code == Code.UP_TO_DATE, out
    assert head(repo) == before


def test_refuses_a_dirty_work_tree(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    (repo / "notes.txt").write_text("untracked\n")
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.DIRTY
    assert "notes.txt" in out
    (repo / "notes.txt").unlink()
    (repo / EDGE.overlay("staging")).write_text("edited by hand\n")
    code, out = cli(repo, validator, "rollback", "--env", "dev")
    assert code == Code.DIRTY, out


def test_refuses_an_unhealthy_source(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    before = head(repo)
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.UNHEALTHY
    assert "no status file for dev" in out

    code, out = cli(repo, validator, "record-status", "--env", "dev", "--smoke", "failed")
    assert code == Code.OK, out
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.UNHEALTHY and "did not pass" in out

    smoke_passed(repo, validator, "dev")
    release(repo, validator, digest("4"), digest("b"))  # newer than what the smoke test saw
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.UNHEALTHY
    assert f"smoke test covered {digest('2')}, not {digest('4')}" in out
    # The dry run refuses the same way: it answers "would this work?".
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--dry-run")
    assert code == Code.UNHEALTHY
    assert pinned(repo, "HEAD", EDGE, "staging") == pinned(repo, before, EDGE, "staging")


def test_status_file_override(repo: Path, validator: Validator, tmp_path: Path) -> None:
    release(repo, validator, digest("2"), digest("b"))
    record = health.status_record(
        "dev",
        "passed",
        {EDGE.image: digest("2"), CORE.image: digest("b")},
        "0" * 40,
        "ci run",
        datetime.now(UTC),
    )
    status = tmp_path / "dev.json"
    status.write_text(record)
    code, out = cli(
        repo, validator, "--from", "dev", "--to", "staging", "--status-file", str(status)
    )
    assert code == Code.OK, out
    assert f"status file {health.status_path('dev')}" in out


def test_refuses_a_change_that_does_not_validate(
    repo: Path, validator: Validator, invalid_patch: tuple[str, str]
) -> None:
    check, patch = invalid_patch
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    # Someone merged a staging overlay the gitops tests would reject; promoting
    # into it must not add a commit on top of a tree that does not validate.
    overlay_path = EDGE.overlay("staging")
    text = (repo / overlay_path).read_text() + "patches:\n  - path: broken.yaml\n"
    commit_file(repo, str(Path(overlay_path).parent / "broken.yaml"), patch, "chore: patch")
    commit_file(repo, overlay_path, text, "chore: a broken staging patch")
    before = head(repo)
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.INVALID, out
    assert "does not validate" in out
    assert f"apps/ws-edge/overlays/staging: {check}" in out  # root and check named
    assert head(repo) == before


def test_refuses_stages_out_of_order(repo: Path, validator: Validator) -> None:
    code, out = cli(repo, validator, "--from", "dev", "--to", "prod")
    assert code == Code.USAGE
    assert "dev promotes to staging, not prod" in out


def test_refuses_while_another_promotion_holds_the_lock(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    lock = repo / ".git" / "promote-staging.lock"
    lock.write_text("pid 1\n")
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.CONCURRENT
    assert "another promotion to staging is running" in out and "pid 1" in out
    lock.unlink()
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging")
    assert code == Code.OK, out


def test_refuses_when_head_moves_under_it(repo: Path, validator: Validator) -> None:
    """Compare-and-swap: a commit made while validating is never overwritten."""
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    moved: list[str] = []

    def racing_validator(checkout: Path) -> list[str]:
        moved.append(commit_file(repo, "docs.txt", "someone else's commit\n", "docs: meanwhile"))
        return validator(checkout)

    code, out = cli(repo, racing_validator, "--from", "dev", "--to", "staging")
    assert code == Code.CONCURRENT, out
    assert "HEAD moved" in out
    assert head(repo) == moved[0]
    assert pinned(repo, "HEAD", EDGE, "staging") == digest("1")


def test_two_promotions_racing_do_not_interleave(repo: Path, validator: Validator) -> None:
    """Two runs at once: one commits, the other refuses; history stays linear."""
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    start = head(repo)
    both_started = threading.Barrier(2, timeout=30)
    results: list[tuple[int, str]] = []

    def slow_validator(checkout: Path) -> list[str]:
        # Both runs hold what they planned from the same HEAD; a run refused at
        # the lock never arrives, and breaks the barrier when it returns.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_started.wait()
        return validator(checkout)

    def promote_staging() -> None:
        results.append(cli(repo, slow_validator, "--from", "dev", "--to", "staging"))
        both_started.abort()  # a run refused at the lock never reaches the barrier

    def release_dev() -> None:
        results.append(cli(repo, slow_validator, "release", "--digest", f"ws-edge={digest('5')}"))
        both_started.abort()

    # Same environment: the lock admits one. Different environments on one
    # branch: both plan from the same HEAD and the compare-and-swap admits one.
    for pair in ((promote_staging, promote_staging), (promote_staging, release_dev)):
        git(repo, "reset", "-q", "--hard", start)
        results.clear()
        both_started.reset()
        threads = [threading.Thread(target=fn) for fn in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted(code for code, _ in results)
        assert codes == [Code.OK, Code.CONCURRENT], results
        assert git(repo, "rev-list", "--count", f"{start}..HEAD").strip() == "1"
        assert git(repo, "status", "--porcelain") == ""


# --- rollback ----------------------------------------------------------------


def test_rollback_reverts_the_last_promotion(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    assert cli(repo, validator, "--from", "dev", "--to", "staging")[0] == Code.OK
    promotion = head(repo)

    code, out = cli(repo, validator, "rollback", "--env", "staging")
    assert code == Code.OK, out
    rolled = head(repo)
    assert pinned(repo, rolled, EDGE, "staging") == digest("1")
    assert pinned(repo, rolled, CORE, "staging") == digest("a")
    assert trailers(repo, rolled)["Reverts"] == [promotion]
    assert f"This reverts commit {promotion}." in git(repo, "log", "-1", "--format=%B")
    # Its tree equals the one before the promotion: a true revert.
    assert git(repo, "rev-parse", f"{rolled}^{{tree}}") == git(
        repo, "rev-parse", f"{promotion}^^{{tree}}"
    )
    # Nothing else was promoted into staging: a second rollback has nothing to do.
    code, out = cli(repo, validator, "rollback", "--env", "staging")
    assert code == Code.NOTHING_TO_ROLL_BACK, out


def test_rollback_steps_back_one_release_at_a_time(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    release(repo, validator, digest("3"), digest("b"))
    assert cli(repo, validator, "rollback", "--env", "dev")[0] == Code.OK
    assert pinned(repo, "HEAD", EDGE, "dev") == digest("2")
    assert cli(repo, validator, "rollback", "--env", "dev")[0] == Code.OK
    assert pinned(repo, "HEAD", EDGE, "dev") == digest("1")
    assert pinned(repo, "HEAD", CORE, "dev") == digest("a")


def test_rollback_of_prod_goes_to_a_branch(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    assert cli(repo, validator, "--from", "dev", "--to", "staging")[0] == Code.OK
    smoke_passed(repo, validator, "staging")
    assert cli(repo, validator, "--from", "staging", "--to", "prod")[0] == Code.OK
    branch = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/promote").strip()
    git(repo, "merge", "-q", "--ff-only", branch)  # the review approved it
    merged = head(repo)
    code, out = cli(repo, validator, "rollback", "--env", "prod")
    assert code == Code.OK, out
    assert head(repo) == merged
    rb = f"rollback/prod/{merged[:12]}"
    assert pinned(repo, rb, EDGE, "prod") == digest("1")


def test_rollback_refuses_when_the_overlay_changed_since(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    path = EDGE.overlay("dev")
    text = (repo / path).read_text().replace("2" * 64, "9" * 64)
    commit_file(repo, path, text, "chore: hand-edited digest")
    code, out = cli(repo, validator, "rollback", "--env", "dev")
    assert code == Code.NOTHING_TO_ROLL_BACK, out
    assert "something changed it since" in out


# --- status ------------------------------------------------------------------


def test_status_counts_releases_behind(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    smoke_passed(repo, validator, "dev")
    assert cli(repo, validator, "--from", "dev", "--to", "staging")[0] == Code.OK
    release(repo, validator, digest("3"), digest("b"))
    code, out = cli(repo, validator, "status", "--json")
    assert code == Code.OK, out
    rows = {(r["service"], r["environment"]): r for r in json.loads(out)}
    assert rows[("ws-edge", "dev")]["behind"] == 0
    assert rows[("ws-edge", "staging")]["behind"] == 1
    assert rows[("ws-edge", "prod")]["behind"] == 2
    assert rows[("ws-edge", "prod")]["digest"] == digest("1")
    assert rows[("session-core", "staging")]["behind"] == 0
    assert rows[("session-core", "prod")]["behind"] == 1
    code, table = cli(repo, validator, "status")
    assert code == Code.OK
    assert f"ws-edge       staging  sha256:{'2' * 12}  1" in table


def test_status_names_a_digest_that_never_went_through_dev(
    repo: Path, validator: Validator
) -> None:
    path = EDGE.overlay("prod")
    commit_file(repo, path, (repo / path).read_text().replace("1" * 64, "7" * 64), "hotfix")
    code, out = cli(repo, validator, "status")
    assert code == Code.OK
    assert "not a release" in out


# --- Argo CD as the health source ---------------------------------------------


def test_argocd_decides_when_it_answers(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))  # and no status file at all
    argo = FakeArgo()
    try:
        for svc, d in ((EDGE, digest("2")), (CORE, digest("b"))):
            argo.apps[svc.name] = {
                "status": {
                    "sync": {"status": "Synced"},
                    "health": {"status": "Healthy"},
                    "summary": {"images": [f"{svc.image}@{d}"]},
                }
            }
        code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--argocd", argo.url)
        assert code == Code.OK, out
        assert f"dev is healthy according to Argo CD {argo.url}" in out
        assert f"Health of dev: Argo CD {argo.url}" in git(repo, "log", "-1", "--format=%B")
    finally:
        argo.server.shutdown()
        argo.server.server_close()


def test_unreachable_argocd_falls_back_to_the_status_file(repo: Path, validator: Validator) -> None:
    release(repo, validator, digest("2"), digest("b"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--argocd", url)
    assert code == Code.UNHEALTHY, out
    assert f"Argo CD at {url} is unreachable" in out
    assert "no status file for dev" in out
    smoke_passed(repo, validator, "dev")
    code, out = cli(repo, validator, "--from", "dev", "--to", "staging", "--argocd", url)
    assert code == Code.OK, out
    assert "healthy according to status file gitops/status/dev.json" in out


def test_wait_returns_once_argocd_runs_what_head_pins(repo: Path, validator: Validator) -> None:
    argo = FakeArgo()
    try:
        for svc, d in ((EDGE, digest("1")), (CORE, digest("a"))):
            argo.apps[svc.name] = {
                "status": {
                    "sync": {"status": "Synced"},
                    "health": {"status": "Progressing"},
                    "summary": {"images": [f"{svc.image}@{d}"]},
                }
            }
        args = ("wait", "--env", "staging", "--argocd", argo.url, "--interval", "0.05")
        code, out = cli(repo, validator, *args, "--timeout", "0.3")
        assert code == Code.UNHEALTHY, out
        assert "Application ws-edge is Progressing, not Healthy" in out
        for app in argo.apps.values():
            app["status"]["health"]["status"] = "Healthy"
        code, out = cli(repo, validator, *args, "--timeout", "5")
        assert code == Code.OK, out
        assert "staging: Synced, Healthy" in out
    finally:
        argo.server.shutdown()
        argo.server.server_close()
