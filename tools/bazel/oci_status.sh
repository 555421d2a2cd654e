#!/usr/bin/env bash
# Workspace status for stamped image builds (labels in tools/bazel/image_labels.bzl):
#   bazel build --stamp --workspace_status_command=tools/bazel/oci_status.sh //services/...:image
# Only STABLE_ keys: they depend on the commit, not on the time, so a stamped
# image is still reproducible from its commit.
set -euo pipefail
echo "STABLE_GIT_COMMIT $(git rev-parse HEAD 2>/dev/null || echo unknown)"
echo "STABLE_VERSION $(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)"
