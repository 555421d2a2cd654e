"""kube_schemas: the pinned Kubernetes and CRD JSON schemas, as Bazel labels.

tools/setup writes them into .tools/kube_schemas (tools/kube_schemas/fetch.py:
upstream files from pinned Go modules, converted). This rule only links that
directory, after checking its STAMP against the lock and the converters, so a
test never runs against schemas older than the lock says. It re-runs when
any stamped file changes, and `@kube_schemas//:k8s` / `:crds` change with it.
"""

# Must match tools/kube_schemas/lock.py STAMPED_FILES (same order).
_STAMPED = [
    "//tools/kube_schemas:sources.lock",
    "//tools/kube_schemas:crd2jsonschema.py",
    "//tools/kube_schemas:helm_metadata.py",
    "//tools/kube_schemas:openapi2jsonschema.py",
    "//tools/kube_schemas:schema_walk.py",
    "//tools/kube_schemas:yamlio.py",
]

_BUILD = """\
package(default_visibility = ["//visibility:public"])

# Kubernetes' kinds: k8s/v<version>-standalone-strict/<kind>-<group>-<version>.json
filegroup(name = "k8s", srcs = glob(["schemas/k8s/**/*.json"]))

# Custom resources: crds/<group>/<kind>_<version>.json
filegroup(name = "crds", srcs = glob(["schemas/crds/**/*.json"]))

# The STAMP, whose directory is the schema root tools/gitops takes (--schemas).
exports_files(["schemas/STAMP"])

filegroup(name = "all", srcs = [":k8s", ":crds", "schemas/STAMP"])
"""

def _kube_schemas_impl(rctx):
    workspace = rctx.path(Label("//:WORKSPACE")).dirname
    schemas = workspace.get_child(".tools").get_child("kube_schemas")
    stamp = schemas.get_child("STAMP")
    paths = [str(rctx.path(Label(label))) for label in _STAMPED]
    if not stamp.exists:
        fail("%s is missing: run `sudo tools/setup` first" % stamp)
    result = rctx.execute(["/usr/bin/sha256sum"] + paths)
    if result.return_code != 0:
        fail("sha256sum failed: %s" % result.stderr)

    # sha256sum printed absolute paths; the stamp has them relative to the workspace.
    want = result.stdout.replace(str(workspace) + "/", "")
    if rctx.read(stamp) != want:
        fail("%s is stale (sources.lock or a converter changed): run `sudo tools/setup`" % schemas)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.symlink(schemas, "schemas")
    rctx.file("BUILD.bazel", _BUILD)

kube_schemas = repository_rule(
    implementation = _kube_schemas_impl,
    local = True,
)
