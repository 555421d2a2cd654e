"""OCI labels every SyncBridge image carries (org.opencontainers.image.*).

Revision and version are workspace status placeholders: filled in by
`--stamp --workspace_status_command=tools/bazel/oci_status.sh`, else the
default after the colon, so unstamped builds stay bit-for-bit reproducible.
"""

SOURCE_URL = "https://github.com/harmonyflow/syncbridge"

def image_labels(title, description):
    """The standard label set for one service's image."""
    return {
        "org.opencontainers.image.description": description,
        "org.opencontainers.image.revision": "{STABLE_GIT_COMMIT:unknown}",
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": "{STABLE_VERSION:0.0.0-dev}",
    }
