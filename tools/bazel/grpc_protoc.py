"""protoc from grpcio-tools, with its bundled well-known types on the path.

The exec tool behind py_proto_library / py_grpc_library (tools/bazel/proto.bzl):
the lock's grpcio-tools generates the code, so generator and runtime match.
"""

import sys
from importlib import resources

from grpc_tools import protoc


def main() -> int:
    well_known = str(resources.files("grpc_tools") / "_proto")
    return int(protoc.main(["grpc_tools.protoc", f"-I{well_known}", *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
