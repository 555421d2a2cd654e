"""go_tools: the Go-built CLIs that tools/setup installs, as Bazel labels.

They are built by `go install` (pinned, from the Go module proxy) into the
project-local .tools/bin; this repository rule only links them, so tests
can depend on `@go_tools//:buildifier` and rerun when a binary changes.
"""

def _go_tools_impl(rctx):
    bin_dir = rctx.path(Label("//:WORKSPACE")).dirname.get_child(".tools").get_child("bin")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    for tool in rctx.attr.tools:
        binary = bin_dir.get_child(tool)
        if not binary.exists:
            fail("%s is missing: run `sudo tools/setup` first" % binary)
        rctx.symlink(binary, tool)
    rctx.file("BUILD.bazel", 'exports_files(%r, visibility = ["//visibility:public"])\n' % rctx.attr.tools)

go_tools = repository_rule(
    implementation = _go_tools_impl,
    attrs = {"tools": attr.string_list(mandatory = True)},
    local = True,
)
