//go:build tools

// Package tools records the release's commands that tests/cluster/build
// compiles straight from k8s.io/kubernetes (kubectl), so that go mod tidy
// keeps their dependencies in go.mod and go.sum.
package tools

import _ "k8s.io/kubernetes/cmd/kubectl"
