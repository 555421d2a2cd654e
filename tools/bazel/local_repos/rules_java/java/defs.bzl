"""Forwards rules_java's public names to Bazel 4.2.3's native rules.

@bazel_tools//tools/jdk loads these on every build, even one without Java;
the real rules_java is a download away. We build no Java ourselves.
"""

java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_runtime = native.java_runtime
java_test = native.java_test
java_toolchain = native.java_toolchain
