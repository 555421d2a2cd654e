"""Image layers: `py_image_layer` (as in aspect_rules_py) and `image_layer`.

Each layer is a gzipped tar written by //tools/bazel/oci:layer from a JSON
spec, with sorted entries, mtime 0 and numeric owners, so equal inputs give
equal bytes (see tools/bazel/oci/layer.py). Every layer also carries the
recipe that made it (OciRecipeInfo), which the reproducibility test replays.
"""

OciRecipeInfo = provider(
    doc = "How to rebuild an image or layer from its inputs, for the reproducibility test.",
    fields = {
        "recipes": "depset of JSON strings {tool, spec, out} (short paths), inputs first",
        "files": "depset of every File the recipes read, specs included",
    },
)

def file_ref(f):
    """A file as the tools see it: exec path for the action, short path for replays."""
    return {"short": f.short_path, "src": f.path}

def layer_recipe(ctx, spec, out, inputs, tool = "layer"):
    """Writes `spec` as JSON and runs the layer tool on it.

    Args:
      ctx: the calling rule's context (it has a `_layer_tool` attribute).
      spec: the layer spec, a dict (see tools/bazel/oci/layer.py).
      out: the .tar.gz File to write.
      inputs: depset of the Files the spec names.
      tool: the tool module, for the recipe.

    Returns:
      OciRecipeInfo for this one action.
    """
    spec_file = ctx.actions.declare_file(out.basename + ".spec.json")
    ctx.actions.write(spec_file, json.encode(spec))
    ctx.actions.run(
        executable = ctx.executable._layer_tool,
        arguments = [spec_file.path, out.path],
        inputs = depset([spec_file], transitive = [inputs]),
        outputs = [out],
        mnemonic = "OciLayer",
        progress_message = "Writing layer %s" % out.short_path,
    )
    return OciRecipeInfo(
        recipes = depset([json.encode({
            "out": out.short_path,
            "spec": spec_file.short_path,
            "tool": tool,
        })]),
        files = depset([spec_file], transitive = [inputs]),
    )

LAYER_TOOL = {
    "_layer_tool": attr.label(
        default = "//tools/bazel/oci:layer",
        executable = True,
        cfg = "exec",
    ),
}

# --- image_layer: files, directories and symlinks at fixed paths ------------

def _parse_dir(path, spec):
    mode, uid, gid = spec.split(":")
    return {"gid": int(gid), "mode": int(mode, 8), "path": path, "uid": int(uid)}

def _image_layer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    files = []
    for target, path in ctx.attr.files.items():
        srcs = target.files.to_list()
        if len(srcs) != 1:
            fail("%s must be a single file for %s" % (target.label, path))
        files.append(dict(file_ref(srcs[0]), path = path))
    spec = {
        "dirs": [_parse_dir(p, s) for p, s in sorted(ctx.attr.directories.items())],
        "files": files,
        "symlinks": [{"path": p, "target": t} for p, t in sorted(ctx.attr.symlinks.items())],
    }
    recipe = layer_recipe(ctx, spec, out, depset(ctx.files.files))
    return [DefaultInfo(files = depset([out])), recipe]

image_layer = rule(
    implementation = _image_layer_impl,
    doc = """A layer of individual files, directories and symlinks (like rules_pkg's pkg_tar).

    files: {label: "/path/in/image"}; mode 0755 if the input is executable, else 0644.
    directories: {"/path": "mode:uid:gid"}, e.g. {"/tmp": "1777:0:0"}.
    symlinks: {"/path": "target"}.
    """,
    attrs = dict({
        "directories": attr.string_dict(),
        "files": attr.label_keyed_string_dict(allow_files = True),
        "symlinks": attr.string_dict(),
    }, **LAYER_TOOL),
)

# --- py_image_layer: a py_binary's runfiles, as image layers ---------------

_PY_TOOLCHAIN = "@bazel_tools//tools/python:toolchain_type"

def _runfiles_path(ctx, f):
    """`<workspace>/<path>` for main-repository files, `<repo>/<path>` for external ones."""
    if f.short_path.startswith("../"):
        return f.short_path[3:]
    return ctx.workspace_name + "/" + f.short_path

def _longest_first(root):
    return -len(root)

def _by_path(entry):
    return entry["path"]

PyImagePackagesInfo = provider(
    doc = "The wheels a py_image_layer ships, for the image's SBOM.",
    fields = {
        "manifest": "JSON File: {platform, wheels: [{name, version}]}",
        "platform": "the wheel platform, e.g. linux_aarch64; empty for the build machine's",
    },
)

def _platform_packages(ctx):
    """{package directory name: its `:files` target} of the `wheels` attribute."""
    return {t.label.package: t for t in ctx.attr.wheels}

def _dist_version(relative):
    """`sanic-23.12.1.dist-info/METADATA` → "23.12.1"; None for other paths."""
    top = relative.split("/")[0]
    if not top.endswith(".dist-info"):
        return None
    return top[:-len(".dist-info")].rsplit("-", 1)[1]

def _py_image_layer_impl(ctx):
    binary = ctx.attr.binary
    runtime = ctx.toolchains[_PY_TOOLCHAIN].py3_runtime
    skip = {f: True for f in runtime.files.to_list()}
    if runtime.interpreter:
        skip[runtime.interpreter] = True
    skip[binary[DefaultInfo].files_to_run.executable] = True

    # Longest first, so a file goes to the innermost import root that holds it.
    roots = sorted(
        binary[PyInfo].imports.to_list() + [ctx.workspace_name],
        key = _longest_first,
    )
    app_root = ctx.attr.root.rstrip("/")
    site_packages = ctx.attr.site_packages.rstrip("/")
    layers = {"app": [], "packages": []}
    inputs = {"app": [], "packages": []}

    # With `wheels`, the binary's wheels only say which packages (and versions)
    # the image needs; their files come from the platform's repository.
    swap = bool(ctx.attr.wheels)
    needed = {}
    for f in binary[DefaultInfo].default_runfiles.files.to_list():
        if f in skip:
            continue
        path = _runfiles_path(ctx, f)
        root = None
        for candidate in roots:
            if path.startswith(candidate + "/"):
                root = candidate
                break
        if root == None:
            # e.g. a wheel's bin/ scripts: not importable, not needed to run.
            continue
        relative = path[len(root) + 1:]
        if f.short_path.startswith("../"):
            package = root.split("/")[1] if root.count("/") >= 2 else root
            version = _dist_version(relative)
            if version or package not in needed:
                needed[package] = version or needed.get(package)
            if swap:
                continue
            kind, dest = "packages", site_packages + "/" + relative
        else:
            kind, dest = "app", app_root + "/" + relative
        layers[kind].append(dict(file_ref(f), path = dest))
        inputs[kind].append(f)

    missing = []
    shipped = []
    available = _platform_packages(ctx)
    for package in sorted(needed):
        if not swap:
            shipped.append({"name": package, "version": needed[package]})
            continue
        if package not in available:
            missing.append("%s %s" % (package, needed[package]))
            continue
        version = None
        for f in available[package].files.to_list():
            marker = "/site-packages/"
            relative = f.short_path[f.short_path.index(marker) + len(marker):]
            version = version or _dist_version(relative)
            layers["packages"].append(dict(file_ref(f), path = site_packages + "/" + relative))
            inputs["packages"].append(f)
        shipped.append({"name": package, "version": version})
        if version != needed[package]:
            missing.append("%s %s (%s pins %s)" % (package, needed[package], ctx.attr.platform, version))

    outs = []
    recipes = []
    for kind in ("packages", "app"):
        out = ctx.actions.declare_file("%s_%s.tar.gz" % (ctx.label.name, kind))
        spec = {"files": sorted(layers[kind], key = _by_path)}
        if kind == "packages" and missing:
            # The layer tool fails with this (see layer.py): a build error naming them.
            spec["missing_wheels"] = {
                "lock": ctx.attr.wheels_lock,
                "packages": missing,
                "platform": ctx.attr.platform,
                "target": str(ctx.label),
            }
        recipes.append(layer_recipe(ctx, spec, out, depset(inputs[kind])))
        outs.append(out)
    manifest = ctx.actions.declare_file(ctx.label.name + "_packages.json")
    ctx.actions.write(manifest, json.encode({
        "platform": ctx.attr.platform,
        "wheels": shipped,
    }))
    return [
        DefaultInfo(files = depset(outs)),
        OutputGroupInfo(packages = depset([manifest])),
        PyImagePackagesInfo(manifest = manifest, platform = ctx.attr.platform),
        OciRecipeInfo(
            recipes = depset(transitive = [r.recipes for r in recipes]),
            files = depset(transitive = [r.files for r in recipes]),
        ),
    ]

py_image_layer = rule(
    implementation = _py_image_layer_impl,
    doc = """A py_binary as two layers: third-party packages, then the application.

    Files from external repositories (the @pip wheels: only those the binary
    depends on) go to `site_packages`, first-party files and generated code to
    `root`, each at its path below the innermost import root. So modules keep
    their Bazel import names: `/app` on PYTHONPATH imports `services.x` and
    (from `imports = ["."]` in libs/proto) `syncbridge.session.v1`.
    The interpreter and the py_binary launcher are left out: the image runs
    `python3.11 -m <main module>` itself.

    For another platform, `wheels` names that platform's packages (the
    `all_files` of its pip_parse repository, e.g. @pip_linux_aarch64): the
    binary's wheels then only say which packages at which versions, and their
    files come from there. A package the platform has no wheel of (or pins at
    another version) fails the build, naming it, `platform` and `wheels_lock`.
    """,
    attrs = dict({
        "binary": attr.label(mandatory = True, providers = [PyInfo]),
        "platform": attr.string(doc = "The wheels' platform, e.g. linux_aarch64."),
        "root": attr.string(default = "/app"),
        # Debian's python3.11 puts this directory on sys.path (site.py).
        "site_packages": attr.string(default = "/usr/local/lib/python3.11/dist-packages"),
        "wheels": attr.label_list(doc = "Each package's `:files` of the platform's repository."),
        "wheels_lock": attr.string(doc = "The platform's lock, named in errors."),
    }, **LAYER_TOOL),
    toolchains = [_PY_TOOLCHAIN],
)

# --- image_recipe: what the reproducibility test replays -------------------

def _image_recipe_impl(ctx):
    info = ctx.attr.image[OciRecipeInfo]
    out = ctx.actions.declare_file(ctx.label.name + ".json")
    ctx.actions.write(out, "[%s]\n" % ",\n".join(info.recipes.to_list()))
    runfiles = ctx.runfiles(
        files = [out] + ctx.attr.image[DefaultInfo].files.to_list(),
        transitive_files = info.files,
    )
    return [DefaultInfo(files = depset([out]), runfiles = runfiles)]

image_recipe = rule(
    implementation = _image_recipe_impl,
    doc = """`<name>.json`: every layer and image action behind `image`, with their inputs
    as runfiles, so a test can rebuild the image outside Bazel (tools/bazel/oci/replay.py).""",
    attrs = {"image": attr.label(mandatory = True, providers = [OciRecipeInfo])},
)
