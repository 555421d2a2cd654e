//go:build tools

// Package tools pins the etcd server tools/setup builds for tools/cluster.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
