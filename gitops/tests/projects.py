"""What Argo CD's AppProject checks refuse, decided offline: pure.

Argo CD refuses to sync an Application whose project does not allow its
source repository or its destination (InvalidSpecError), and refuses each
resource whose group/kind the project's resource lists exclude or whose
namespace is not a permitted destination ("resource X is not permitted in
project Y"). Neither shows up in a rendered manifest or a schema; this module
applies the same rules to the rendered roots, so such a tree fails a test
instead of the first real sync. Patterns are Argo CD's globs (`*` and
literals here; fnmatch agrees with them on those) and `!` negation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

Object = Mapping[str, Any]

# Kinds our trees render that have no namespace; any other kind must name one
# or take the Application's destination namespace.
CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("cert-manager.io", "ClusterIssuer"),
        ("external-secrets.io", "ClusterSecretStore"),
        ("trust.cert-manager.io", "Bundle"),
        ("policy.linkerd.io", "ClusterNetworkPolicy"),
        ("storage.k8s.io", "StorageClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    }
)


def _glob(pattern: str, value: str) -> bool:
    if pattern.startswith("!"):
        return not fnmatchcase(value, pattern[1:])
    return fnmatchcase(value, pattern)


def group_kind(obj: Object) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return group, str(obj.get("kind", ""))


def _listed(entries: Iterable[Mapping[str, str]], group: str, kind: str) -> bool:
    return any(
        _glob(str(e.get("group", "")), group) and _glob(str(e.get("kind", "")), kind)
        for e in entries
    )


def destination_permitted(project: Object, server: str, namespace: str) -> bool:
    """Every positive pattern of some destination matches, and no negated one excludes."""
    destinations = project.get("spec", {}).get("destinations", []) or []
    return any(
        _glob(str(d.get("server", "")), server) and _glob(str(d.get("namespace", "")), namespace)
        for d in destinations
    )


def kind_permitted(project: Object, group: str, kind: str, namespaced: bool) -> bool:
    spec = project.get("spec", {})
    if namespaced:
        whitelist = spec.get("namespaceResourceWhitelist")
        if whitelist is not None and not _listed(whitelist, group, kind):
            return False
        return not _listed(spec.get("namespaceResourceBlacklist", []) or [], group, kind)
    if not _listed(spec.get("clusterResourceWhitelist", []) or [], group, kind):
        return False
    return not _listed(spec.get("clusterResourceBlacklist", []) or [], group, kind)


def check(
    objects: Iterable[dict[str, Any]],
    render_source: Callable[[dict[str, Any]], list[dict[str, Any]] | None],
    root_project: str = "root",
) -> list[str]:
    """Refusals Argo CD would make for a cluster root's objects and each Application's.

    `objects` is the rendered root (Applications, AppProjects, ...), itself
    synced by an Application of `root_project`; `render_source` renders an
    Application's source (None where it is a chart, which is not rendered here).
    """
    objects = list(objects)
    projects = {str(o["metadata"]["name"]): o for o in objects if o.get("kind") == "AppProject"}
    problems: list[str] = []

    def resources(
        app: str, project: Object, dest: Mapping[str, Any], items: Iterable[Object]
    ) -> None:
        for obj in items:
            group, kind = group_kind(obj)
            namespaced = (group, kind) not in CLUSTER_SCOPED
            name = f"{kind}/{obj.get('metadata', {}).get('name', '?')}"
            if not kind_permitted(project, group, kind, namespaced):
                problems.append(f"{app}: {name}: kind {group or 'core'}/{kind} is not permitted")
                continue
            if namespaced:
                namespace = str(
                    obj.get("metadata", {}).get("namespace") or dest.get("namespace", "")
                )
                if not destination_permitted(project, str(dest.get("server", "")), namespace):
                    problems.append(f"{app}: {name}: namespace {namespace!r} is not permitted")

    if root_project not in projects:
        problems.append(f"root: project {root_project!r} is not in the root")
    else:
        resources(
            "root",
            projects[root_project],
            {"server": "https://kubernetes.default.svc", "namespace": "argocd"},
            objects,
        )
    for app in (o for o in objects if o.get("kind") == "Application"):
        name = str(app["metadata"]["name"])
        spec = app["spec"]
        project = projects.get(str(spec.get("project", "")))
        if project is None:
            problems.append(f"{name}: project {spec.get('project')!r} is not in the root")
            continue
        source = spec.get("source", {})
        if not any(
            _glob(str(r), str(source.get("repoURL", "")))
            for r in project["spec"].get("sourceRepos", [])
        ):
            problems.append(
                f"{name}: source {source.get('repoURL')!r} is not a source of its project"
            )
        dest = spec.get("destination", {})
        if not destination_permitted(
            project, str(dest.get("server", "")), str(dest.get("namespace", ""))
        ):
            problems.append(
                f"{name}: destination {dest.get('server')} namespace "
                f"{dest.get('namespace', '')!r} is not a destination of project {spec['project']}"
            )
        rendered = render_source(app)
        if rendered is not None:
            resources(name, project, dest, rendered)
    return problems
