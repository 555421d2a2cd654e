"""The overlay editor changes digest values and not one other byte."""

import pytest

from tools.promote import overlay

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64

TEXT = """\
# ws-edge in staging
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: registry.harmonyflow.io/syncbridge/ws-edge
    digest: sha256:{a}  # set by tools/promote
  # a comment between entries
  - digest: "sha256:{b}"
    name: registry.harmonyflow.io/syncbridge/session-core
patches:
  - path: digest.yaml
""".format(a="a" * 64, b="b" * 64)


def test_reads_every_entry_whatever_the_key_order_and_quoting() -> None:
    assert overlay.digests(TEXT) == {
        "registry.harmonyflow.io/syncbridge/ws-edge": A,
        "registry.harmonyflow.io/syncbridge/session-core": B,
    }


def test_rewrites_only_the_digest_values() -> None:
    new = overlay.set_digests(
        TEXT,
        {
            "registry.harmonyflow.io/syncbridge/ws-edge": C,
            "registry.harmonyflow.io/syncbridge/session-core": C,
        },
    )
    assert new == TEXT.replace("a" * 64, "c" * 64).replace("b" * 64, "c" * 64)
    assert '"sha256:' + "c" * 64 + '"' in new  # quotes kept
    assert "# set by tools/promote" in new


def test_keeps_crlf_line_endings() -> None:
    crlf = TEXT.replace("\n", "\r\n")
    new = overlay.set_digests(crlf, {"registry.harmonyflow.io/syncbridge/ws-edge": C})
    assert new == crlf.replace("a" * 64, "c" * 64)


def test_unindented_list_as_kustomize_edit_writes_it() -> None:
    text = f"images:\n- name: x/y\n  digest: {A}\nnamespace: n\n"
    assert overlay.set_digests(text, {"x/y": B}) == text.replace(A, B)


def test_a_key_that_contains_the_value_does_not_confuse_the_span() -> None:
    text = "images:\n  - name: n\n    digest: " + A + "\n"
    assert overlay.set_digests(text, {"n": B}) == text.replace(A, B)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resources: []\n", "no top-level `images:`"),
        ("images:\n  - name: x\n    newTag: v1\n    digest: " + A + "\n", "newTag"),
        ("images:\n  - name: x\n", "has no digest"),
        ("images:\n  - name: x\n    digest: sha256:abc\n", "is not sha256"),
        ("images:\n  - digest: " + A + "\n", "has no name"),
        (
            "images:\n  - name: x\n    digest: " + A + "\n  - name: x\n    digest: " + A + "\n",
            "twice",
        ),
        ("images:\nresources: []\n", "empty"),
    ],
)
def test_refuses_what_the_contract_forbids(text: str, message: str) -> None:
    with pytest.raises(overlay.OverlayError, match=message):
        overlay.digests(text)


def test_never_adds_an_image_the_overlay_does_not_deploy() -> None:
    with pytest.raises(overlay.OverlayError, match="no `images:` entry for other"):
        overlay.set_digests(TEXT, {"other": C})


def test_refuses_a_malformed_new_digest() -> None:
    with pytest.raises(overlay.OverlayError, match="not sha256"):
        overlay.set_digests(TEXT, {"registry.harmonyflow.io/syncbridge/ws-edge": "latest"})
