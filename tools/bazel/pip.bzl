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
        ] + ([rctx.attr.platform] if rctx.attr.platform else []),
        timeout = 1200,
        quiet = False,
    )
    if result.return_code != 0:
        fail("pip_parse failed:\n%s%s" % (result.stdout, result.stderr))

pip_parse = repository_rule(
    implementation = _pip_parse_impl,
    doc = """Downloads the wheels pinned (with hashes) in a lock file, one py_library each.

    `platform` (e.g. "linux_aarch64", see tools/bazel/wheel_platforms.py)
    fetches that platform's wheels instead of this machine's: not importable
    here, they are what an image for the platform ships (each package's `:files`).
    """,
    attrs = {
        "platform": attr.string(),
        "python_interpreter": attr.string(default = "/usr/bin/python3.11"),
        "requirements_lock": attr.label(allow_single_file = True, mandatory = True),
        "_helper": attr.label(default = "//tools/bazel:pip_repository.py"),
        # Read by the helper (imported beside it): a change refetches.
        "_platforms": attr.label(default = "//tools/bazel:wheel_platforms.py"),
    },
)

def compile_pip_requirements(name, requirements_in, requirements_txt, platform_locks = {}):
    """`bazel run :<name>.update` re-resolves the locks; `:<name>_test` checks they cover the input.

    Args:
      name: `<name>.update` and `<name>_test`.
      requirements_in: the direct requirements.
      requirements_txt: the lock of this machine's platform.
      platform_locks: {platform: lock}: the same pins with that platform's wheel hashes.
    """
    platform_args = ["%s=%s" % (p, lock) for p, lock in sorted(platform_locks.items())]
    native.py_binary(
        name = name + ".update",
        srcs = ["//tools/bazel:compile_pip_requirements.py"],
        main = "//tools/bazel:compile_pip_requirements.py",
        args = [requirements_in, requirements_txt] + platform_args,
        data = [requirements_in, requirements_txt] + platform_locks.values(),
        deps = ["//tools/bazel:wheel_platforms"],
    )
    native.py_test(
        name = name + "_test",
        srcs = ["//tools/bazel:lock_covers_input_test.py"],
        main = "//tools/bazel:lock_covers_input_test.py",
        args = ["$(rootpath %s)" % requirements_in, "$(rootpath %s)" % requirements_txt] + [
            "$(rootpath %s)" % lock
            for _, lock in sorted(platform_locks.items())
        ],
        data = [requirements_in, requirements_txt] + platform_locks.values(),
    )
