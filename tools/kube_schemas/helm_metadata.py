"""CRDs that upstream ships only as Helm chart templates, rendered safely.

Linkerd keeps its CRDs in `charts/linkerd-crds/templates/`: plain YAML
except for a few expressions in `metadata` (labels, an annotation include).
The schema lives in `spec`, so rendering needs no Helm: an expression in
`metadata` becomes a fixed placeholder (a whole-line include is dropped,
it only adds metadata entries), and any expression elsewhere, or any
template logic (`if`, `range`, ...) anywhere, is refused, because then the
schema itself would depend on values we do not evaluate.
"""

from __future__ import annotations

import re

PLACEHOLDER = "rendered-without-helm"
_EXPRESSION = re.compile(r"\{\{-?(.*?)-?\}\}")
_LOGIC = {"if", "else", "end", "range", "with", "define", "template", "block"}


def render(text: str, source: str) -> str:
    """`text` with metadata expressions replaced; ValueError for anything else."""
    out = []
    in_metadata = False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.rstrip("\r\n") == "---":
            in_metadata = False
        elif line.strip() and not line[0].isspace() and not line.startswith("#"):
            in_metadata = line.startswith("metadata:")
        if "{{" not in line:
            out.append(line)
            continue
        where = f"{source}:{number}"
        words = [m.strip().split(maxsplit=1) for m in _EXPRESSION.findall(line)]
        if any(w and w[0] in _LOGIC for w in words) or "{{" in _EXPRESSION.sub("", line):
            raise ValueError(f"{where}: template logic; only metadata expressions are rendered")
        if not in_metadata:
            raise ValueError(f"{where}: a template expression outside metadata")
        if _EXPRESSION.sub("", line).strip():
            out.append(_EXPRESSION.sub(PLACEHOLDER, line))
    return "".join(out)
