"""Debian packages for distroless images, after rules_distroless.

- `deb_packages` (repository rule): fetches every package of a lock file with
  `apt-get download name=version` (the machine's configured apt sources) and
  checks its sha256; `@<name>//:packages` lists the .debs.
- `deb_lock` (macro): `bazel run :<name>` resolves packages.toml into the
  lock; `:<name>_test` checks the fetched set is closed under its Depends.
- `deb_layer` (rule): unpacks packages into one image layer, as dpkg would
  but without maintainer scripts, on a merged /usr.
"""

load("//tools/bazel:image.bzl", "LAYER_TOOL", "file_ref", "layer_recipe")

def _deb_packages_impl(rctx):
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    result = rctx.execute(
        [
            rctx.attr.python_interpreter,
            rctx.path(rctx.attr._helper),
            rctx.path(rctx.attr.lock),
            rctx.path("."),
        ],
        timeout = 600,
        quiet = False,
    )
    if result.return_code != 0:
        fail("deb_packages failed:\n%s%s" % (result.stdout, result.stderr))

deb_packages = repository_rule(
    implementation = _deb_packages_impl,
    doc = "Downloads the Debian packages pinned (name, version, sha256) in a lock file.",
    attrs = {
        "lock": attr.label(allow_single_file = True, mandatory = True),
        "python_interpreter": attr.string(default = "/usr/bin/python3.11"),
        "_helper": attr.label(default = "//tools/bazel/deb:repository.py"),
    },
)

def deb_lock(name, config, locks, packages):
    """`bazel run :<name>` rewrites every lock from `config`; `:<name>_test` checks them.

    Args:
      name: the run target; the test is `<name>_test`.
      config: packages.toml (include / exclude / architectures).
      locks: {arch: "packages.<arch>.lock"}, committed beside config.
      packages: {arch: the fetched .debs of that lock (`@debian_<arch>//:packages`)}.
    """
    native.py_binary(
        name = name,
        srcs = ["//tools/bazel/deb:lock.py"],
        main = "//tools/bazel/deb:lock.py",
        args = ["$(rootpath %s)" % config],
        data = [config] + locks.values(),
        deps = ["//tools/bazel/deb:control"],
    )
    args = ["$(rootpath %s)" % config]
    for arch in sorted(locks):
        args += ["--arch", arch, "$(rootpath %s)" % locks[arch], "$(rootpaths %s)" % packages[arch]]
    native.py_test(
        name = name + "_test",
        srcs = ["//tools/bazel/deb:lock_test.py"],
        main = "//tools/bazel/deb:lock_test.py",
        args = args,
        data = [config] + locks.values() + packages.values(),
        deps = ["//tools/bazel/deb:lock_lib"],
    )

# What deb_layer leaves out by default: documentation, never read in an image.
DEFAULT_DROP = [
    "usr/share/doc",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/man",
]

# Bookworm's merged /usr: the layer tool moves /bin, /lib... content below /usr.
_USRMERGE_LINKS = {
    "bin": "usr/bin",
    "lib": "usr/lib",
    "lib64": "usr/lib64",
    "sbin": "usr/sbin",
}

def _deb_layer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    symlinks = dict(_USRMERGE_LINKS, **ctx.attr.symlinks)
    spec = {
        "deb": {
            "ca_bundle": ctx.attr.ca_bundle,
            "ca_source_dir": ctx.attr.ca_source_dir,
            "drop": ctx.attr.drop,
            "keep": ctx.attr.keep,
            "status_dir": ctx.attr.status_dir,
            "usrmerge": True,
        },
        "debs": [file_ref(f) for f in ctx.files.packages],
        "symlinks": [{"path": p, "target": t} for p, t in sorted(symlinks.items())],
    }
    recipe = layer_recipe(ctx, spec, out, depset(ctx.files.packages))
    return [DefaultInfo(files = depset([out])), recipe]

deb_layer = rule(
    implementation = _deb_layer_impl,
    doc = """One layer holding the files of Debian packages, on a merged /usr.

    No maintainer script runs, so what they would generate is done here:
    the CA bundle, and the control files under `status_dir` (distroless's
    /var/lib/dpkg/status.d, read by vulnerability scanners).
    """,
    attrs = dict({
        "ca_bundle": attr.string(default = "etc/ssl/certs/ca-certificates.crt"),
        "ca_source_dir": attr.string(default = "usr/share/ca-certificates"),
        "drop": attr.string_list(
            doc = "Paths (after the /usr merge) left out, with everything below them.",
            default = DEFAULT_DROP,
        ),
        "keep": attr.string_list(
            doc = "Glob patterns kept even below a dropped path (licences).",
            default = ["usr/share/doc/*/copyright"],
        ),
        "packages": attr.label_list(allow_files = [".deb"], mandatory = True),
        "status_dir": attr.string(default = "var/lib/dpkg/status.d"),
        "symlinks": attr.string_dict(
            doc = "Extra symlinks; the merged-/usr ones (bin -> usr/bin, ...) are always made.",
        ),
    }, **LAYER_TOOL),
)
