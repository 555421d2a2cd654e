"""py_service_image: one Python service's image targets, the same way for every service.

Expands to the rules_oci-shaped targets a service needs:
  :<name>_layers, :<name> (+ :<name>.digest): the linux/amd64 image (the
      build machine's platform: what podman runs here);
  :<name>_linux_arm64_layers, :<name>_linux_arm64: the same service for
      linux/arm64, on the arm64 .debs with the aarch64 wheels of the same pins;
  :<name>_sbom, :<name>_linux_arm64_sbom: each image's SPDX SBOM
      (`<name>_sbom.spdx.json`: every .deb and wheel, version and hash);
  :<name>_index (+ :<name>_index.digest): the oci_image_index of both, the
      digest promotion deploys;
  :<name>_load (bazel run: the amd64 image into podman),
  :<name>_push (bazel run: the index and both manifests, by digest).
"""

load("@pip_linux_aarch64//:requirements.bzl", aarch64_wheels = "all_files")
load("//tools/bazel:image.bzl", "py_image_layer")
load("//tools/bazel:image_labels.bzl", "image_labels")
load("//tools/bazel:oci.bzl", "oci_image", "oci_image_index", "oci_load", "oci_push")
load("//tools/bazel:sbom.bzl", "spdx_sbom")

# Image platform → (Debian architecture of the base, wheel platform and its lock).
_PLATFORMS = {
    "linux_arm64": struct(
        base = "//third_party/debian:python_base_arm64",
        deb_lock = "//third_party/debian:packages.arm64.lock",
        wheel_lock = "//:requirements_lock_linux_aarch64.txt",
        wheel_platform = "linux_aarch64",
        wheels = aarch64_wheels,
    ),
}

def py_service_image(name, binary, module, repository, title, description, exposed_ports, env = {}, visibility = None):
    """The distroless images running `python3.11 -m <module>` as uid 65532, amd64 and arm64.

    Args:
      name: the image target (usually "image").
      binary: the service's py_binary, whose transitive deps form the wheel layer.
      module: the entry module, e.g. "services.ws_edge.server".
      repository: the name podman loads it as, e.g. "syncbridge/ws-edge".
      title: OCI title label.
      description: OCI description label.
      exposed_ports: e.g. ["8080/tcp"].
      env: extra environment (bind addresses: a container listens on all interfaces).
      visibility: of the images, their SBOMs, the index, load and push (the layers stay private).
    """
    settings = dict(
        entrypoint = ["/usr/bin/python3.11", "-m", module],
        env = dict({
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": "/app",
            "PYTHONUNBUFFERED": "1",
        }, **env),
        exposed_ports = exposed_ports,
        labels = image_labels(description = description, title = title),
        user = "65532:65532",
        visibility = visibility,
        workdir = "/app",
    )
    py_image_layer(
        name = name + "_layers",
        binary = binary,
    )
    oci_image(
        name = name,
        base = "//third_party/debian:python_base_amd64",
        tars = [":" + name + "_layers"],
        **settings
    )
    spdx_sbom(
        name = name + "_sbom",
        deb_lock = "//third_party/debian:packages.amd64.lock",
        image = ":" + name,
        layers = ":" + name + "_layers",
        visibility = visibility,
        wheel_lock = "//:requirements_lock.txt",
    )
    images = [":" + name]
    for platform, spec in _PLATFORMS.items():
        image = "%s_%s" % (name, platform)
        py_image_layer(
            name = image + "_layers",
            binary = binary,
            platform = spec.wheel_platform,
            wheels = spec.wheels,
            wheels_lock = spec.wheel_lock,
        )
        oci_image(
            name = image,
            base = spec.base,
            tars = [":" + image + "_layers"],
            **settings
        )
        spdx_sbom(
            name = image + "_sbom",
            deb_lock = spec.deb_lock,
            image = ":" + image,
            layers = ":" + image + "_layers",
            visibility = visibility,
            wheel_lock = spec.wheel_lock,
        )
        images.append(":" + image)
    oci_image_index(
        name = name + "_index",
        images = images,
        visibility = visibility,
    )
    oci_load(
        name = name + "_load",
        image = ":" + name,
        repo_tags = [repository + ":latest"],
        visibility = visibility,
    )
    oci_push(
        name = name + "_push",
        image = ":" + name + "_index",
        remote_tags = ["latest"],
        visibility = visibility,
    )
