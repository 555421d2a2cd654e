"""spdx_sbom: an image's SBOM, SPDX 2.3 JSON, from the locks it was built from.

Written at build time beside the image (`<name>.spdx.json`) by
//tools/bazel/oci:sbom: every .deb of the base (its packages.<arch>.lock)
and every wheel the image's py_image_layer ships (with the sha256 the
platform's wheel lock pins), each with version, hash and package URL.
"""

load("//tools/bazel:image.bzl", "PyImagePackagesInfo", "file_ref")
load("//tools/bazel:oci.bzl", "OciImageInfo")

def _spdx_sbom_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".spdx.json")
    image = ctx.attr.image[OciImageInfo]
    manifest = ctx.attr.layers[PyImagePackagesInfo].manifest
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec_file, json.encode({
        "deb_lock": file_ref(ctx.file.deb_lock),
        "digest": file_ref(image.digest),
        "name": str(ctx.attr.image.label),
        "packages": file_ref(manifest),
        "wheel_lock": file_ref(ctx.file.wheel_lock),
    }))
    ctx.actions.run(
        executable = ctx.executable._sbom_tool,
        arguments = [spec_file.path, out.path],
        inputs = [spec_file, image.digest, manifest, ctx.file.deb_lock, ctx.file.wheel_lock],
        outputs = [out],
        mnemonic = "SpdxSbom",
        progress_message = "Writing the SBOM of %s" % ctx.attr.image.label,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

spdx_sbom = rule(
    implementation = _spdx_sbom_impl,
    doc = "`<name>.spdx.json`: the SBOM of `image`, whose wheels are `layers`' and base `deb_lock`'s.",
    attrs = {
        "deb_lock": attr.label(allow_single_file = True, mandatory = True),
        "image": attr.label(mandatory = True, providers = [OciImageInfo]),
        "layers": attr.label(mandatory = True, providers = [PyImagePackagesInfo]),
        "wheel_lock": attr.label(allow_single_file = True, mandatory = True),
        "_sbom_tool": attr.label(
            default = "//tools/bazel/oci:sbom",
            executable = True,
            cfg = "exec",
        ),
    },
)
