//go:build tools

// Package tools pins Argo CD's multi-call binary (application-controller,
// repo-server, ... by the name it is run as) that tools/setup builds for
// tools/cluster.
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
