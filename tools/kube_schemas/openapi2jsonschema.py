"""Kubernetes' OpenAPI (swagger 2.0) document -> kubeconform's per-kind schemas.

Writes the layout openapi2jsonschema makes and kubeconform's default template
reads: `<kind>-<group>-<version>.json` (core group: `<kind>-<version>.json`,
group cut at its first dot), "standalone" (every `$ref` inlined) and "strict"
(an object with declared fields takes no others). Two upstream quirks are
rewritten as openapi2jsonschema does: `int-or-string` fields and resource
quantities accept a YAML number as well as a string.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tools.kube_schemas.schema_walk import (
    Schema,
    allow_null,
    drop_descriptions,
    forbid_unknown_fields,
    pin_identity,
    walk,
)

_REF_PREFIX = "#/definitions/"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# A recursive type (JSONSchemaProps inside a CRD) is cut at its second
# appearance: whatever sits below accepts any value.
_ANYTHING: Schema = {}


def kind_file(group: str, version: str, kind: str) -> str:
    """The file name kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` asks for."""
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind}{suffix}.json".lower()


def _inline(node: Any, definitions: dict[str, Schema], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith(_REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}")
        name = ref.removeprefix(_REF_PREFIX)
        if name not in definitions:
            raise ValueError(f"$ref to missing definition {name!r}")
        if name in stack:
            return dict(_ANYTHING)
        if name == _QUANTITY:
            return {"anyOf": [{"type": "string"}, {"type": "number"}]}
        return _inline(definitions[name], definitions, (*stack, name))
    out = {key: _inline(value, definitions, stack) for key, value in node.items()}
    if out.get("format") == "int-or-string":
        return {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    return out


def _rewrite(node: Schema, root: bool) -> Schema:
    node = drop_descriptions(forbid_unknown_fields(node))
    node.pop("x-kubernetes-group-version-kind", None)
    return node if root else allow_null(node)


def convert(swagger: dict[str, Any]) -> dict[str, Schema]:
    """Maps each file name to its schema, one per group/version/kind of the document."""
    definitions: dict[str, Schema] = swagger["definitions"]
    out: dict[str, Schema] = {}
    for name in sorted(definitions):
        definition = definitions[name]
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            schema = walk(_inline(definition, definitions, (name,)), _rewrite)
            if "properties" in schema:
                schema = pin_identity(schema, api_version, kind)
            file = kind_file(group, version, kind)
            if file in out and out[file] != schema:
                raise ValueError(f"{file}: two different definitions claim it (second: {name})")
            out[file] = schema
    if not out:
        raise ValueError("no definition carries x-kubernetes-group-version-kind")
    return out


def write(schemas: dict[str, Schema], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for file, schema in schemas.items():
        (directory / file).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("swagger", type=Path, help="api/openapi-spec/swagger.json")
    parser.add_argument("out", type=Path, help="directory to write <kind>-<group>-<version>.json")
    args = parser.parse_args(argv)
    schemas = convert(json.loads(args.swagger.read_text()))
    write(schemas, args.out)
    print(f"openapi2jsonschema: {len(schemas)} schemas in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
