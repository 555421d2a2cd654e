"""Sync-wave order of a cluster root: what installs a kind syncs before what uses it.

A cluster root (gitops/clusters/<env>) is Applications in waves. An
Application from this repository renders objects of some kinds; the
Application that installs each kind's CRD (or, for core kinds, nothing) must
be in an earlier wave, or the first sync of a new cluster fails on an unknown
kind. Pure functions over rendered objects; the test renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# Which Application installs the CRD of each custom kind the tree uses.
INSTALLED_BY: dict[tuple[str, str], str] = {
    ("cert-manager.io", "Certificate"): "cert-manager",
    ("cert-manager.io", "ClusterIssuer"): "cert-manager",
    ("cert-manager.io", "Issuer"): "cert-manager",
    ("trust.cert-manager.io", "Bundle"): "trust-manager",
    ("external-secrets.io", "ExternalSecret"): "external-secrets",
    ("external-secrets.io", "ClusterSecretStore"): "external-secrets",
    ("monitoring.coreos.com", "ServiceMonitor"): "kube-prometheus-stack",
    ("monitoring.coreos.com", "PodMonitor"): "kube-prometheus-stack",
    ("monitoring.coreos.com", "PrometheusRule"): "kube-prometheus-stack",
    ("postgresql.cnpg.io", "Cluster"): "cloudnative-pg",
    ("rabbitmq.com", "RabbitmqCluster"): "rabbitmq-cluster-operator",
    ("policy.linkerd.io", "Server"): "linkerd-crds",
    ("policy.linkerd.io", "AuthorizationPolicy"): "linkerd-crds",
    ("policy.linkerd.io", "MeshTLSAuthentication"): "linkerd-crds",
    ("policy.linkerd.io", "NetworkAuthentication"): "linkerd-crds",
    ("policy.linkerd.io", "HTTPRoute"): "linkerd-crds",
}
# What an object needs running (not only its CRD) before it can become healthy.
NEEDS: dict[tuple[str, str], tuple[str, ...]] = {
    # A secret store answers only once its Vault store exists.
    ("external-secrets.io", "ExternalSecret"): ("external-secrets-config",),
    # Meshed pods need the control plane's injector and identity.
    ("apps", "Deployment"): ("linkerd-control-plane",),
}
WAVE = "argocd.argoproj.io/sync-wave"


def wave(application: dict[str, Any]) -> int:
    annotations = application["metadata"].get("annotations") or {}
    return int(annotations.get(WAVE, "0"))


def applications(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Application"}


def group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group, str(obj.get("kind", ""))


def check_order(
    root: list[dict[str, Any]],
    render_source: Callable[[dict[str, Any]], list[dict[str, Any]] | None],
) -> list[str]:
    """Every Application's objects: their kind's installer, and what they need, sync earlier.

    `render_source(application)` returns the objects an Application of this
    repository renders, or None for a chart (its own CRDs come with it).
    """
    apps = applications(root)
    problems = []
    for name, application in sorted(apps.items()):
        objects = render_source(application)
        if objects is None:
            continue
        for obj in objects:
            key = group_kind(obj)
            earlier = [INSTALLED_BY[key]] if key in INSTALLED_BY else []
            earlier += [n for n in NEEDS.get(key, ()) if n != name]
            for installer in earlier:
                if installer not in apps:
                    problems.append(f"{name}: {key[1]} needs {installer}, which this root lacks")
                elif wave(apps[installer]) >= wave(application):
                    problems.append(
                        f"{name} (wave {wave(application)}): {key[1]} needs {installer} "
                        f"(wave {wave(apps[installer])}) in an earlier wave"
                    )
    return sorted(set(problems))
