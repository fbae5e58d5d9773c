//go:build tools

// Package tools records the one command tests/rig/lib/build-kubelet compiles
// from k8s.io/kubernetes (the kubelet of the local cluster's release), so that
// go mod tidy keeps its dependencies in go.mod and go.sum.
package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
