"""protoc plugin `protoc-gen-mypy`: mypy-protobuf's `.pyi` stubs for the generated messages.

The wheel's console script, as a py_binary (the pip rule installs no scripts):
py_proto_library hands it to protoc with `--plugin` (tools/bazel/proto.bzl), so
the stubs come from the lock's mypy-protobuf, like the code from its grpcio-tools.
"""

from mypy_protobuf.main import main

if __name__ == "__main__":
    main()
