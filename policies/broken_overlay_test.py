"""A deliberately broken overlay fails every policy with a message a person can act on.

fixtures/broken/overlays/prod is rendered with the pinned kustomize, exactly
like a gitops/ root, and given to every policy package at once (the
validator's `data.syncbridge[_].deny`). Each policy must fire with the
message below: what is wrong, on which object, and how to fix it.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from policies import opa

ROOT = "fixtures/broken/overlays/prod"
TREE = "fixtures/broken"

EXPECTED = {
    "appproject": {
        "Application/argocd/ws-edge-prod: belongs to the default AppProject, which any repository"
        " may deploy anywhere through; set spec.project to this repository's scoped project",
    },
    "coreauthz": {
        "Deployment/harmonyflow-prod/ws-edge: ws-edge runs as the namespace's default"
        " ServiceAccount, which every pod there shares, so session-core's authorization cannot"
        " tell ws-edge apart; set spec.template.spec.serviceAccountName: ws-edge (its own"
        " ServiceAccount)",
        "Server/harmonyflow-prod/session-core-grpc: no AuthorizationPolicy admits ws-edge alone to"
        " session-core's gRPC port; add one targeting this Server whose"
        " requiredAuthenticationRefs name a MeshTLSAuthentication of ServiceAccount ws-edge",
    },
    "hpareplicas": {
        "Deployment/harmonyflow-prod/ws-edge: sets spec.replicas: 3 while"
        " HorizontalPodAutoscaler/harmonyflow-prod/ws-edge owns its replica count; remove"
        " spec.replicas from the manifest (and let Argo CD's ignoreDifferences cover the live"
        " field)",
    },
    "images": {
        'Deployment/harmonyflow-prod/ws-edge: container "ws-edge" image'
        ' "registry.harmonyflow.io/syncbridge/ws-edge:latest" has the mutable tag latest, but prod'
        " needs a digest and no tag; give its repository a `digest: sha256:<64 hex>` entry under"
        " images: in the overlay's kustomization.yaml, with no newTag",
    },
    "ingresstls": {
        "Ingress/harmonyflow-prod/ws-edge: host ws.prod.harmonyflow.io has no TLS; add it to a"
        " spec.tls entry's hosts with a secretName cert-manager fills",
    },
    "meshinjection": {
        "Namespace/-/harmonyflow-prod: app namespace is not in the mesh; annotate it with"
        " linkerd.io/inject: enabled",
        "Namespace/-/harmonyflow-prod: app namespace in prod admits meshed traffic no policy"
        " covers; annotate it with config.linkerd.io/default-inbound-policy: deny",
    },
    "networkpolicy": {
        "Namespace/-/harmonyflow-prod: no default-deny NetworkPolicy for Egress; add one in"
        " harmonyflow-prod with podSelector: {}, policyTypes: [Ingress, Egress] and no rules (then"
        " allow each needed flow in its own policy)",
    },
    "pdb": {
        "Deployment/harmonyflow-prod/session-core: runs at least 3 replicas but no"
        " PodDisruptionBudget selects its pods; add one in namespace harmonyflow-prod whose"
        " selector matches the pod template's labels (e.g. minAvailable: 2)",
    },
    "podsecurity": {
        f'Deployment/harmonyflow-prod/ws-edge: container "ws-edge" {problem}'
        for problem in (
            "has a writable root filesystem; set securityContext.readOnlyRootFilesystem: true and"
            " mount an emptyDir where it must write (e.g. /tmp)",
            "has no RuntimeDefault seccomp profile; set securityContext.seccompProfile.type:"
            " RuntimeDefault on the pod",
            "keeps the runtime's default Linux capabilities; set"
            " securityContext.capabilities.drop: [ALL]",
            "may gain privileges (setuid binaries); set"
            " securityContext.allowPrivilegeEscalation: false",
            "may run as root; set securityContext.runAsNonRoot: true on the pod (or the container)",
            "runs as uid the image's default, not 65532; set securityContext.runAsUser: 65532 on"
            " the pod (the images' nonroot user)",
        )
    },
    "probes": {
        'Deployment/harmonyflow-prod/ws-edge: container "ws-edge" has no readinessProbe; add one'
        " (httpGet on /health/* or the gRPC health service)",
    },
    "resources": {
        f'Deployment/harmonyflow-prod/ws-edge: container "ws-edge" sets no resources.limits.{r};'
        " set requests and limits for both cpu and memory"
        for r in ("cpu", "memory")
    },
}


def render(workdir: Path) -> list[Any]:
    """`kustomize build` of the broken overlay, as objects (opa parses the YAML).

    kustomize does not find a kustomization.yaml that is a symlink, which
    every runfile is, so the tree is copied (contents, not links) first.
    """
    tree = workdir / TREE
    shutil.copytree(opa.policies_dir() / TREE, tree)
    root = tree / Path(ROOT).relative_to(TREE)
    built = subprocess.run(
        [opa.tool("KUSTOMIZE"), "build", str(root)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    documents = [d for d in re.split(r"^---$", built.stdout, flags=re.MULTILINE) if d.strip()]
    objects: list[Any] = opa.evaluate("[yaml.unmarshal(d) | some d in input]", documents)
    return objects


def environment(root: str) -> str | None:
    """The gitops contract's environment of a root: its dev|staging|prod path segment."""
    return next((part for part in root.split("/") if part in {"dev", "staging", "prod"}), None)


def test_every_policy_fires_on_the_broken_overlay_with_its_message(tmp_path: Path) -> None:
    objects = render(tmp_path)
    document = {"root": ROOT, "environment": environment(ROOT), "objects": objects}
    denied = opa.evaluate(
        "{name: d | some name; d := data.syncbridge[name].deny}", document, opa.policies_dir()
    )
    silent = sorted(name for name, messages in denied.items() if not messages)
    assert not silent, f"policies the broken overlay does not trip: {silent}"
    assert {name: set(messages) for name, messages in denied.items()} == EXPECTED


def test_the_overlay_is_a_real_kustomization_of_a_base(tmp_path: Path) -> None:
    kinds = sorted({o["kind"] for o in render(tmp_path)})
    assert kinds == [
        "Application",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "NetworkPolicy",
        "Server",
    ]
