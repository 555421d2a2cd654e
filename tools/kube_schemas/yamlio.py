"""Safe YAML loading the way Kubernetes' own decoder reads manifests.

PyYAML's safe loader resolves a bare `=` to YAML 1.1's `!!value` tag and
then cannot build it (upstream CRDs have `- =` in operator enums); Go's
decoder reads it as the string "=", and so do we.
"""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's parser when PyYAML has it (both the wheel and Debian's do): the
# same safe constructors, several times faster on the large upstream CRDs.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _value_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream, empty ones dropped."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
