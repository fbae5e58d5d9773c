//go:build tools

// Package tools pins the toxiproxy release that tests/bench/build compiles
// (go build github.com/Shopify/toxiproxy/v2/cmd/server inside this module).
package tools

import _ "github.com/Shopify/toxiproxy/v2/cmd/server"
