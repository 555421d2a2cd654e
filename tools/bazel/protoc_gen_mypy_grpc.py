"""protoc plugin `protoc-gen-mypy_grpc`: mypy-protobuf's `.pyi` stubs for the gRPC code.

The twin of protoc_gen_mypy.py for `*_pb2_grpc.py` (stubs, servicers and
`add_*_to_server`, typed against types-grpcio); py_grpc_library runs it.
"""

from mypy_protobuf.main import grpc

if __name__ == "__main__":
    grpc()
