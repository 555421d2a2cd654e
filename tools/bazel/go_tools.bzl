"""go_tools: the Go-built CLIs that tools/setup installs, as Bazel labels.

They are built by `go install` (pinned, from the Go module proxy) into the
project-local .tools/bin; this repository rule only links them, so tests
can depend on `@go_tools//:buildifier` and rerun when a binary changes;
`dirs` links trees setup writes (the local cluster's CRDs) as filegroups.
"""

def _go_tools_impl(rctx):
    tools_dir = rctx.path(Label("//:WORKSPACE")).dirname.get_child(".tools")
    bin_dir = tools_dir.get_child("bin")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    for tool in rctx.attr.tools:
        binary = bin_dir.get_child(tool)
        if not binary.exists:
            fail("%s is missing: run `sudo tools/setup` first" % binary)
        rctx.symlink(binary, tool)
    build = ['exports_files(%r, visibility = ["//visibility:public"])' % rctx.attr.tools]
    for name, rel in rctx.attr.dirs.items():
        tree = tools_dir
        for part in rel.split("/"):
            tree = tree.get_child(part)
        if not tree.get_child("STAMP").exists:
            fail("%s is missing: run `sudo tools/setup` first" % tree)
        rctx.symlink(tree, name)
        build.append('filegroup(name = "%s", srcs = glob(["%s/**"]), visibility = ["//visibility:public"])' % (name, name))
        build.append('exports_files(["%s/STAMP"], visibility = ["//visibility:public"])' % name)
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")

go_tools = repository_rule(
    implementation = _go_tools_impl,
    attrs = {
        "tools": attr.string_list(mandatory = True),
        # name -> a directory under .tools that setup writes with a STAMP: a filegroup.
        "dirs": attr.string_dict(),
    },
    local = True,
)
