//go:build tools

// Package tools pins the Kubernetes commands tools/setup builds for the local
// control plane (tools/cluster): go build k8s.io/kubernetes/cmd/<name>.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
