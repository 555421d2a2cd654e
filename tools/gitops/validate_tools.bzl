"""The gitops validator's pinned CLIs and schemas, as labels (never PATH).

One list for every target that validates a tree (//gitops:validate_test,
//tools/gitops:validate, //tools/promote): listed directly in `data` so that
$(rootpath) in `args` may name them.
"""

VALIDATE_TOOLS = [
    "@go_tools//:kubeconform",
    "@go_tools//:kustomize",
    "@go_tools//:opa",
    "@kube_schemas//:all",
    "@kube_schemas//:schemas/STAMP",
]

VALIDATE_TOOL_ARGS = [
    "--kustomize=$(rootpath @go_tools//:kustomize)",
    "--kubeconform=$(rootpath @go_tools//:kubeconform)",
    "--opa=$(rootpath @go_tools//:opa)",
    "--schemas=$(rootpath @kube_schemas//:schemas/STAMP)",
]
