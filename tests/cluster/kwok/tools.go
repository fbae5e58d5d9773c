//go:build tools

// Package tools pins the kwok release that tests/cluster/build compiles
// (go build sigs.k8s.io/kwok/cmd/kwok inside this module).
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
