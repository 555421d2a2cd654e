"""Forwards rules_cc's public names to Bazel 4.2.3's native rules.

Debian's bazel-rules-cc is too new for Bazel 4.2.3 and nothing can be
downloaded, so @rules_cc is this shim; we build no C++ ourselves.
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
