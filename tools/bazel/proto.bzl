"""py_proto_library and py_grpc_library, named like rules_python's / grpc's.

Bazel 4.2.3 offline has no protobuf or grpc rule sets, so one small rule runs
grpcio-tools' protoc (from the pip lock) over the .proto sources. The `.pyi`
stubs come from mypy-protobuf's two protoc plugins (protoc_gen_mypy.py,
protoc_gen_mypy_grpc.py), so mypy checks callers of the messages and of the
gRPC stubs and servicers alike. Generated code lives only in bazel-bin, never
in the source tree.
"""

load("@pip//:requirements.bzl", "requirement")

_SUFFIXES = {
    "grpc": ["_pb2_grpc.py", "_pb2_grpc.pyi"],
    "proto": ["_pb2.py", "_pb2.pyi"],
}

def _py_proto_gen_impl(ctx):
    root = ctx.label.package
    outs = []
    for src in ctx.files.srcs:
        if not src.short_path.startswith(root + "/"):
            fail("%s must live under the package %s" % (src.short_path, root))
        stem = src.short_path[len(root) + 1:-len(".proto")]
        for kind in ctx.attr.kinds:
            outs.extend([ctx.actions.declare_file(stem + s) for s in _SUFFIXES[kind]])
    out_root = ctx.bin_dir.path + "/" + root
    args = ctx.actions.args()
    args.add("-I" + (root if root else "."))
    if "proto" in ctx.attr.kinds:
        args.add("--python_out=" + out_root)
        args.add("--plugin=protoc-gen-mypy=" + ctx.executable._protoc_gen_mypy.path)
        args.add("--mypy_out=quiet:" + out_root)
    if "grpc" in ctx.attr.kinds:
        args.add("--grpc_python_out=" + out_root)
        args.add("--plugin=protoc-gen-mypy_grpc=" + ctx.executable._protoc_gen_mypy_grpc.path)
        args.add("--mypy_grpc_out=quiet:" + out_root)
    args.add_all(ctx.files.srcs)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = ctx.files.srcs,
        tools = [
            ctx.attr._protoc_gen_mypy[DefaultInfo].files_to_run,
            ctx.attr._protoc_gen_mypy_grpc[DefaultInfo].files_to_run,
        ],
        outputs = outs,
        mnemonic = "GrpcProtoc",
        progress_message = "Generating Python for %s" % ctx.label,
    )
    return [DefaultInfo(files = depset(outs), runfiles = ctx.runfiles(files = outs))]

_py_proto_gen = rule(
    implementation = _py_proto_gen_impl,
    attrs = {
        "kinds": attr.string_list(mandatory = True),
        "srcs": attr.label_list(allow_files = [".proto"], mandatory = True),
        "_protoc": attr.label(
            default = "//tools/bazel:grpc_protoc",
            executable = True,
            cfg = "exec",
        ),
        "_protoc_gen_mypy": attr.label(
            default = "//tools/bazel:protoc_gen_mypy",
            executable = True,
            cfg = "exec",
        ),
        "_protoc_gen_mypy_grpc": attr.label(
            default = "//tools/bazel:protoc_gen_mypy_grpc",
            executable = True,
            cfg = "exec",
        ),
    },
)

def py_proto_library(name, srcs, deps = [], **kwargs):
    """Python messages (`*_pb2.py` + `.pyi`) for `srcs`, importable by proto path.

    The .proto files' directory below this package is the Python package, e.g.
    `<pkg>/syncbridge/session/v1/session.proto` → `syncbridge.session.v1.session_pb2`.
    """
    _py_proto_gen(name = name + "_gen", srcs = srcs, kinds = ["proto"])
    native.py_library(
        name = name,
        srcs = [":" + name + "_gen"],
        # The .pyi stubs ride along as data: py_library keeps only .py in srcs.
        data = [":" + name + "_gen"],
        imports = ["."],
        deps = deps + [requirement("protobuf")],
        **kwargs
    )

def py_grpc_library(name, srcs, deps, **kwargs):
    """gRPC stubs (`*_pb2_grpc.py` + `.pyi`) for `srcs`; `deps` holds their py_proto_library."""
    _py_proto_gen(name = name + "_gen", srcs = srcs, kinds = ["grpc"])
    native.py_library(
        name = name,
        srcs = [":" + name + "_gen"],
        data = [":" + name + "_gen"],
        imports = ["."],
        deps = deps + [requirement("grpcio")],
        **kwargs
    )
