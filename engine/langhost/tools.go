//go:build tools

// Package tools pins the Python language host (`pulumi-language-python`) for
// scripts/engine.sh, which builds it with
// `go build github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3`
// from a copy of this directory. See go.mod for why this version.
package tools

import (
	_ "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
	_ "github.com/pulumi/pulumi/sdk/v3/go/common/version"
)
