"""py_service_image: one Python service's image targets, the same way for every service.

Expands to the rules_oci-shaped targets a service needs:
  :<name>_layers (wheels, then the app), :<name> (+ :<name>.digest),
  :<name>_load (bazel run: into podman), :<name>_push (bazel run: by digest).
"""

load("//tools/bazel:image.bzl", "py_image_layer")
load("//tools/bazel:image_labels.bzl", "image_labels")
load("//tools/bazel:oci.bzl", "oci_image", "oci_load", "oci_push")

def py_service_image(name, binary, module, repository, title, description, exposed_ports, env = {}):
    """The distroless image running `python3.11 -m <module>` as uid 65532.

    Args:
      name: the image target (usually "image").
      binary: the service's py_binary, whose transitive deps form the wheel layer.
      module: the entry module, e.g. "services.ws_edge.server".
      repository: the name podman loads it as, e.g. "syncbridge/ws-edge".
      title: OCI title label.
      description: OCI description label.
      exposed_ports: e.g. ["8080/tcp"].
      env: extra environment (bind addresses: a container listens on all interfaces).
    """
    py_image_layer(
        name = name + "_layers",
        binary = binary,
    )
    oci_image(
        name = name,
        base = "//third_party/debian:python_base_amd64",
        entrypoint = ["/usr/bin/python3.11", "-m", module],
        env = dict({
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": "/app",
            "PYTHONUNBUFFERED": "1",
        }, **env),
        exposed_ports = exposed_ports,
        labels = image_labels(description = description, title = title),
        tars = [":" + name + "_layers"],
        user = "65532:65532",
        workdir = "/app",
    )
    oci_load(
        name = name + "_load",
        image = ":" + name,
        repo_tags = [repository + ":latest"],
    )
    oci_push(
        name = name + "_push",
        image = ":" + name,
        remote_tags = ["latest"],
    )
