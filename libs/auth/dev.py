"""The development issuer: what `bazel run //libs/client:dev_token -- init` writes.

Both services default to it, so the local stack (tools/run-local) verifies the
same tokens at the edge and in core without configuration.
"""

from pathlib import Path

DEV_KEY_DIR = str(Path.home() / ".config" / "syncbridge" / "dev-jwt")
DEV_ISSUER = "https://auth.syncbridge.dev"
DEV_AUDIENCE = "syncbridge"
