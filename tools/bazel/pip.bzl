"""pip_parse, requirement and compile_pip_requirements, shaped like rules_python.

rules_python cannot be fetched for Bazel 4.2.3 offline; these keep its names
so moving to it later is a change of load() lines.
"""

def _pip_parse_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", "")
    result = rctx.execute(
        [
            rctx.attr.python_interpreter,
            rctx.path(rctx.attr._helper),
            rctx.path(rctx.attr.requirements_lock),
            rctx.path("."),
        ],
        timeout = 1200,
        quiet = False,
    )
    if result.return_code != 0:
        fail("pip_parse failed:\n%s%s" % (result.stdout, result.stderr))

pip_parse = repository_rule(
    implementation = _pip_parse_impl,
    doc = "Downloads the wheels pinned (with hashes) in a lock file, one py_library each.",
    attrs = {
        "python_interpreter": attr.string(default = "/usr/bin/python3.11"),
        "requirements_lock": attr.label(allow_single_file = True, mandatory = True),
        "_helper": attr.label(default = "//tools/bazel:pip_repository.py"),
    },
)

def compile_pip_requirements(name, requirements_in, requirements_txt):
    """`bazel run :<name>.update` re-resolves the lock; `:<name>_test` checks it covers the input."""
    native.py_binary(
        name = name + ".update",
        srcs = ["//tools/bazel:compile_pip_requirements.py"],
        main = "//tools/bazel:compile_pip_requirements.py",
        args = [requirements_in, requirements_txt],
        data = [requirements_in, requirements_txt],
    )
    native.py_test(
        name = name + "_test",
        srcs = ["//tools/bazel:lock_covers_input_test.py"],
        main = "//tools/bazel:lock_covers_input_test.py",
        args = ["$(rootpath %s)" % requirements_in, "$(rootpath %s)" % requirements_txt],
        data = [requirements_in, requirements_txt],
    )
