"""oci_image, oci_load and oci_push, named and shaped like rules_oci's.

rules_oci cannot be fetched for Bazel 4.2.3 offline; these keep its rule and
attribute names so that moving to it later is a change of load() lines.

- `oci_image`: an OCI image layout directory `<name>` plus `<name>.digest`
  (`sha256:…` of the manifest, for promotion), from an optional `base`
  oci_image and layer `tars` (py_image_layer, image_layer, deb_layer).
- `oci_image_index`: one OCI index of per-platform `images` (each an
  oci_image), `<name>` plus `<name>.digest`: the index's, what is deployed.
- `oci_load`: `bazel run` loads the image into podman under `repo_tags`.
- `oci_push`: `bazel run` pushes to `repository` by digest, then tags it with
  `remote_tags`; `-- --repository R` and `-- --tag T` override.

Labels and env values may name workspace status keys, e.g.
`"{STABLE_GIT_COMMIT}"`: with `--stamp` (and tools/bazel/oci_status.sh as
--workspace_status_command) they are filled in, otherwise they read
`unknown`. Only stable keys keep the digest a function of the sources.
"""

load("//tools/bazel:image.bzl", "OciRecipeInfo", "file_ref")

OciImageInfo = provider(
    doc = "An image built by oci_image.",
    fields = {
        "digest": "File holding sha256:<hex> of the manifest",
        "layout": "The OCI layout directory (a tree artifact)",
    },
)

StampInfo = provider(
    doc = "Whether the build stamps (--stamp), for rules with stamp = -1.",
    fields = {"stamp": "bool"},
)

def _stamp_detector_impl(ctx):
    return [StampInfo(stamp = ctx.attr.enabled)]

stamp_detector = rule(
    implementation = _stamp_detector_impl,
    doc = "Tells rules whether --stamp is set (a select in tools/bazel/oci/BUILD.bazel).",
    attrs = {"enabled": attr.bool()},
)

def _stamping(ctx):
    if ctx.attr.stamp == 1:
        return True
    if ctx.attr.stamp == 0:
        return False
    return ctx.attr._stamp_flag[StampInfo].stamp

def _oci_image_impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.outputs.digest
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    layers = ctx.files.tars
    inputs = list(layers)
    recipes = [t[OciRecipeInfo] for t in ctx.attr.tars if OciRecipeInfo in t]
    base = None
    if ctx.attr.base:
        base = ctx.attr.base[OciImageInfo].layout
        inputs.append(base)
        recipes.append(ctx.attr.base[OciRecipeInfo])
    stamp = None
    if _stamping(ctx):
        stamp = ctx.info_file
        inputs.append(stamp)
    spec = {
        "base": file_ref(base) if base else None,
        "config": {
            "architecture": ctx.attr.architecture,
            "cmd": ctx.attr.cmd if ctx.attr.cmd else None,
            "entrypoint": ctx.attr.entrypoint if ctx.attr.entrypoint else None,
            "env": [[k, v] for k, v in ctx.attr.env.items()],
            "exposed_ports": ctx.attr.exposed_ports,
            "labels": [[k, v] for k, v in ctx.attr.labels.items()],
            "os": ctx.attr.os,
            "user": ctx.attr.user,
            "workdir": ctx.attr.workdir,
        },
        "layers": [file_ref(f) for f in layers],
        "stamp": stamp.path if stamp else None,
    }
    ctx.actions.write(spec_file, json.encode(spec))
    ctx.actions.run(
        executable = ctx.executable._image_tool,
        arguments = [spec_file.path, layout.path, digest.path],
        inputs = [spec_file] + inputs,
        outputs = [layout, digest],
        mnemonic = "OciImage",
        progress_message = "Assembling image %s" % ctx.label,
    )
    recipe = json.encode({
        "digest": digest.short_path,
        "out": layout.short_path,
        "spec": spec_file.short_path,
        "stamped": stamp != None,
        "tool": "image",
    })
    return [
        # As runfiles too, so a test's `data` sees the image.
        DefaultInfo(
            files = depset([layout, digest]),
            runfiles = ctx.runfiles(files = [layout, digest]),
        ),
        OciImageInfo(digest = digest, layout = layout),
        OciRecipeInfo(
            recipes = depset([recipe], transitive = [r.recipes for r in recipes]),
            files = depset([spec_file], transitive = [r.files for r in recipes]),
        ),
    ]

_STAMP_ATTRS = {
    "stamp": attr.int(
        default = -1,
        values = [-1, 0, 1],
        doc = "1: always stamp, 0: never, -1: follow --stamp.",
    ),
    "_stamp_flag": attr.label(default = "//tools/bazel/oci:stamp"),
}

oci_image = rule(
    implementation = _oci_image_impl,
    doc = """An OCI image layout: `base`'s layers, then `tars`, with a config.

    The config starts from the base's: `env` and `labels` are merged into it,
    `entrypoint`, `cmd`, `user`, `workdir` replace it, `exposed_ports` add
    to it (`"50051"` means `"50051/tcp"`). Without a base, `os` and
    `architecture` say what the image is for.
    """,
    attrs = dict({
        "architecture": attr.string(default = "amd64"),
        "base": attr.label(providers = [OciImageInfo]),
        "cmd": attr.string_list(),
        "entrypoint": attr.string_list(),
        "env": attr.string_dict(),
        "exposed_ports": attr.string_list(),
        "labels": attr.string_dict(),
        "os": attr.string(default = "linux"),
        "tars": attr.label_list(allow_files = [".tar.gz", ".tgz"]),
        "user": attr.string(),
        "workdir": attr.string(),
        "_image_tool": attr.label(
            default = "//tools/bazel/oci:image",
            executable = True,
            cfg = "exec",
        ),
    }, **_STAMP_ATTRS),
    outputs = {"digest": "%{name}.digest"},
)

def _oci_image_index_impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.outputs.digest
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    images = [image[OciImageInfo].layout for image in ctx.attr.images]
    ctx.actions.write(spec_file, json.encode({"images": [file_ref(f) for f in images]}))
    ctx.actions.run(
        executable = ctx.executable._index_tool,
        arguments = [spec_file.path, layout.path, digest.path],
        inputs = [spec_file] + images,
        outputs = [layout, digest],
        mnemonic = "OciImageIndex",
        progress_message = "Assembling image index %s" % ctx.label,
    )
    recipe = json.encode({
        "digest": digest.short_path,
        "out": layout.short_path,
        "spec": spec_file.short_path,
        "stamped": False,
        "tool": "index",
    })
    recipes = [image[OciRecipeInfo] for image in ctx.attr.images]
    return [
        # As runfiles too, so a test's `data` sees the image.
        DefaultInfo(
            files = depset([layout, digest]),
            runfiles = ctx.runfiles(files = [layout, digest]),
        ),
        OciImageInfo(digest = digest, layout = layout),
        OciRecipeInfo(
            recipes = depset([recipe], transitive = [r.recipes for r in recipes]),
            files = depset([spec_file], transitive = [r.files for r in recipes]),
        ),
    ]

oci_image_index = rule(
    implementation = _oci_image_index_impl,
    doc = """An OCI image index of `images`, one per platform (os/architecture of each config).

    The layout's index.json names the index itself, so `skopeo copy --all`
    of it (oci_push) carries every platform's manifest and blobs;
    `<name>.digest` is the index's digest. Two images of one platform fail.
    """,
    attrs = {
        "images": attr.label_list(mandatory = True, providers = [OciImageInfo, OciRecipeInfo]),
        "_index_tool": attr.label(
            default = "//tools/bazel/oci:index",
            executable = True,
            cfg = "exec",
        ),
    },
    outputs = {"digest": "%{name}.digest"},
)

def _launcher(ctx, tool, args):
    """A `bazel run` script: the tool, on the image, from this target's runfiles."""
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        "\n".join([
            "#!/usr/bin/env bash",
            "# Generated by %s: runs %s." % (ctx.label, tool.short_path),
            "set -euo pipefail",
            'runfiles="${RUNFILES_DIR:-$0.runfiles}"',
            'cd "$runfiles/%s"' % ctx.workspace_name,
            'export PYTHONPATH="$runfiles/%s"' % ctx.workspace_name,
            "exec /usr/bin/python3.11 -S -s %s %s \"$@\"" % (
                tool.short_path,
                " ".join(["'%s'" % a for a in args]),
            ),
            "",
        ]),
        is_executable = True,
    )
    return script

def _oci_load_impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    tool = ctx.file._tool
    args = [image.layout.short_path]
    for tag in ctx.attr.repo_tags:
        args += ["--default-tag", tag]
    script = _launcher(ctx, tool, args)
    runfiles = ctx.runfiles(files = [tool, image.layout, image.digest])
    return [DefaultInfo(executable = script, runfiles = runfiles)]

oci_load = rule(
    implementation = _oci_load_impl,
    doc = "`bazel run` loads `image` into podman and tags it with each of `repo_tags`.",
    attrs = {
        "image": attr.label(mandatory = True, providers = [OciImageInfo]),
        "repo_tags": attr.string_list(mandatory = True),
        "_tool": attr.label(default = "//tools/bazel/oci:load.py", allow_single_file = True),
    },
    executable = True,
)

def _oci_push_impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    tool = ctx.file._tool
    args = [image.layout.short_path, "--digest-file", image.digest.short_path]
    if ctx.attr.repository:
        args += ["--repository", ctx.attr.repository]
    for tag in ctx.attr.remote_tags:
        args += ["--default-tag", tag]
    script = _launcher(ctx, tool, args)
    runfiles = ctx.runfiles(files = [tool, image.layout, image.digest])
    return [DefaultInfo(executable = script, runfiles = runfiles)]

oci_push = rule(
    implementation = _oci_push_impl,
    doc = """`bazel run` pushes `image` to `repository` by digest, then adds `remote_tags`.

    `image` is an oci_image or an oci_image_index; of an index, every
    platform's manifest goes up too, each by its digest.

    `bazel run :push -- --repository 127.0.0.1:5000/x --tag v1` overrides
    the repository and replaces the tags. Loopback registries are spoken to
    over plain HTTP; others over TLS with skopeo's usual auth files.
    """,
    attrs = {
        "image": attr.label(mandatory = True, providers = [OciImageInfo]),
        "remote_tags": attr.string_list(),
        "repository": attr.string(),
        "_tool": attr.label(default = "//tools/bazel/oci:push.py", allow_single_file = True),
    },
    executable = True,
)
