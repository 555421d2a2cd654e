#!/usr/bin/env bash
# Builds the local control plane's binaries into .tools/bin, pinned by the
# wrapper modules in tools/cluster/gomod/ (their go.mod and go.sum), from the Go
# module proxy. Called by tools/setup; idempotent: a binary is rebuilt only when
# its module files or flags change (a stamp beside it records them), and Go's
# build cache makes a rebuild after a clean checkout take seconds.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin_dir="$repo/.tools/bin"
gomod="$repo/tools/cluster/gomod"
go=/usr/local/go/bin/go
mkdir -p "$bin_dir"

k8s_version=v1.34.4
k8s_stamp="-X k8s.io/component-base/version.gitVersion=$k8s_version"
k8s_stamp+=" -X k8s.io/component-base/version.gitMajor=1"
k8s_stamp+=" -X k8s.io/component-base/version.gitMinor=34"
k8s_stamp+=" -X k8s.io/component-base/version.gitTreeState=clean"
k8s_stamp+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
k8s_stamp+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
k8s_stamp+=" -X k8s.io/client-go/pkg/version.gitMinor=34"

# name  wrapper-module  package  extra-ldflags
targets=(
  "etcd|etcd|go.etcd.io/etcd/server/v3|"
  "kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|$k8s_stamp"
  "kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|$k8s_stamp"
  "kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|$k8s_stamp"
  "kubectl|kubernetes|k8s.io/kubernetes/cmd/kubectl|$k8s_stamp"
  "argocd|argocd|github.com/argoproj/argo-cd/v3/cmd|"
)

for target in "${targets[@]}"; do
  IFS='|' read -r name module package ldflags <<<"$target"
  dir="$gomod/$module"
  want="$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16) $package $ldflags"
  stamp="$bin_dir/.$name.version"
  if [ -x "$bin_dir/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  echo "tools/setup: building $name ($package, pinned by tools/cluster/gomod/$module)"
  started=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local \
    nice -n 10 "$go" build -trimpath -ldflags "-s -w $ldflags" -o "$bin_dir/$name.new" "$package")
  mv "$bin_dir/$name.new" "$bin_dir/$name"
  echo "$want" >"$stamp"
  echo "tools/setup: built $name in $((SECONDS - started)) s"
done

# Argo CD is one binary that acts as the component it is run as.
for role in argocd-application-controller argocd-repo-server; do
  ln -sfn argocd "$bin_dir/$role"
done
