"""CustomResourceDefinition files -> kubeconform's per-version CRD schemas.

Writes `{group}/{kind}_{version}.json` (kind lower-cased), the layout
kubeconform reads with `-schema-location '{{ .Group }}/{{ .ResourceKind
}}_{{ .ResourceAPIVersion }}.json'`, from each served version's
`openAPIV3Schema`, made strict: an object with declared fields takes no others
unless upstream marks it `x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tools.kube_schemas import helm_metadata, yamlio
from tools.kube_schemas.schema_walk import (
    Schema,
    allow_null,
    drop_descriptions,
    forbid_unknown_fields,
    pin_identity,
    walk,
)


def _rewrite(node: Schema, root: bool) -> Schema:
    node = drop_descriptions(forbid_unknown_fields(node))
    if node.pop("nullable", False):
        node = allow_null(node)
    if node.get("x-kubernetes-int-or-string") and not any(
        key in node for key in ("anyOf", "oneOf", "type")
    ):
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return node


def convert_crd(crd: dict[str, Any], source: str) -> dict[str, Schema]:
    """One CRD's schemas by relative path; a version without a schema is an error."""
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1":
        raise ValueError(f"{source}: only apiextensions.k8s.io/v1 CRDs are supported")
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    out: dict[str, Schema] = {}
    for version in spec["versions"]:
        name = version["name"]
        schema = version.get("schema", {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            raise ValueError(f"{source}: {kind} {name} has no openAPIV3Schema to validate with")
        strict = pin_identity(walk(schema, _rewrite), f"{group}/{name}", kind)
        # The API server accepts metadata on every custom resource, declared or
        # not (Linkerd's schemas leave it out); it validates it as ObjectMeta.
        strict["properties"].setdefault("metadata", {"type": "object"})
        out[f"{group}/{kind.lower()}_{name}.json"] = strict
    return out


def convert(documents: Iterable[tuple[str, Any]]) -> dict[str, Schema]:
    """Every CRD among `(source, document)` pairs; other documents are refused."""
    out: dict[str, Schema] = {}
    for source, doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"{source}: not a CustomResourceDefinition")
        for path, schema in convert_crd(doc, source).items():
            if path in out:
                raise ValueError(f"{source}: {path} is defined twice")
            out[path] = schema
    return out


def load_documents(paths: Iterable[Path], *, helm_templates: bool = False) -> list[tuple[str, Any]]:
    """Every YAML document of `paths`; Helm templates rendered first (helm_metadata)."""
    docs: list[tuple[str, Any]] = []
    for path in paths:
        text = path.read_text()
        if helm_templates:
            text = helm_metadata.render(text, str(path))
        docs.extend((str(path), doc) for doc in yamlio.load_all(text))
    return docs


def write(schemas: dict[str, Schema], directory: Path) -> None:
    for rel, schema in schemas.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write {group}/{kind}_{version}.json")
    parser.add_argument("crds", type=Path, nargs="+", help="CRD YAML files")
    args = parser.parse_args(argv)
    schemas = convert(load_documents(args.crds))
    write(schemas, args.out)
    print(f"crd2jsonschema: {len(schemas)} schemas in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
