"""What a PreSync hook's pod needs must exist before the hook: a pure check.

Argo CD runs an Application's PreSync hooks before it applies anything of the
Sync phase. A hook Job whose pod names a ServiceAccount, Secret or ConfigMap that
the same Application makes only in the Sync phase waits forever on a new cluster
(the pod cannot be created), and so does the whole sync. Objects other
Applications make are not this check's business (the waves check orders those).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

HOOK = "argocd.argoproj.io/hook"
POD_TEMPLATE_KINDS = {"Job", "Deployment", "StatefulSet", "DaemonSet"}


def phase(obj: dict[str, Any]) -> str:
    """ "PreSync", "Sync", ... ; "Sync" for an object that is not a hook."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(HOOK, "Sync")).split(",")[0].strip()


def provides(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of what a pod can reference that `obj` makes."""
    name = obj["metadata"]["name"]
    if obj["kind"] in {"ServiceAccount", "Secret", "ConfigMap"}:
        yield obj["kind"], name
    elif obj["kind"] == "ExternalSecret":
        yield "Secret", obj.get("spec", {}).get("target", {}).get("name", name)


def references(pod_spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of what a pod spec needs before its pod can be created or start."""
    yield "ServiceAccount", pod_spec.get("serviceAccountName", "default")
    containers = [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]
    for container in containers:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            if "secretKeyRef" in value_from:
                yield "Secret", value_from["secretKeyRef"]["name"]
            if "configMapKeyRef" in value_from:
                yield "ConfigMap", value_from["configMapKeyRef"]["name"]
    for volume in pod_spec.get("volumes", []):
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]


def check_presync(app: str, objects: Iterable[dict[str, Any]]) -> list[str]:
    """Problems: a PreSync pod referencing what this Application makes only later."""
    objects = list(objects)
    made_in: dict[tuple[str, str], str] = {}
    for obj in objects:
        for ref in provides(obj):
            made_in[ref] = phase(obj)
    problems = []
    for obj in objects:
        if phase(obj) != "PreSync" or obj["kind"] not in POD_TEMPLATE_KINDS:
            continue
        for kind, name in references(obj["spec"]["template"]["spec"]):
            when = made_in.get((kind, name))
            if when is not None and when != "PreSync":
                problems.append(
                    f"{app}: PreSync {obj['kind']}/{obj['metadata']['name']} needs "
                    f"{kind}/{name}, which this Application makes only in the {when} phase"
                )
    return problems
