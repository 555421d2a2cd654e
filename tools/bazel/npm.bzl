"""npm_translate_lock, shaped like rules_js's: an @npm repository from a package-lock.json.

rules_js cannot be fetched for Bazel 4.2.3 offline; this keeps its name so a
later move is a change of load() lines. Targets: `@npm//:<package>` for each
direct dependency in package.json (scopes flattened: `@npm//:types_node`),
with every package it needs, and `@npm//:node_modules` for all of them.
"""

def _npm_translate_lock_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    result = rctx.execute(
        [
            rctx.attr.python_interpreter,
            rctx.path(rctx.attr._helper),
            rctx.attr.npm,
            rctx.attr.node_dir,
            rctx.path(rctx.attr.package_json),
            rctx.path(rctx.attr.package_lock_json),
            rctx.path("."),
        ],
        timeout = 900,
        quiet = False,
    )
    if result.return_code != 0:
        fail("npm_translate_lock failed:\n%s%s" % (result.stdout, result.stderr))

npm_translate_lock = repository_rule(
    implementation = _npm_translate_lock_impl,
    doc = "Installs the packages pinned (with integrity hashes) in a package-lock.json.",
    attrs = {
        "node_dir": attr.string(default = "/usr/bin", doc = "where `node` is (npm runs on it)"),
        "npm": attr.string(default = "/usr/bin/npm"),
        "package_json": attr.label(allow_single_file = True, mandatory = True),
        "package_lock_json": attr.label(allow_single_file = True, mandatory = True),
        "python_interpreter": attr.string(default = "/usr/bin/python3.11"),
        "_helper": attr.label(default = "//tools/bazel:npm_repository.py"),
    },
)
