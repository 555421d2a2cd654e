#!/bin/sh
echo "coverage is not supported offline (see tools/bazel/README.md)" >&2
exit 1
