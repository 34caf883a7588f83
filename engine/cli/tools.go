//go:build tools

// Package tools exists only so that this module's go.mod/go.sum pin the exact
// versions of the Pulumi CLI's main package and of the SDK package whose
// version.Version the build stamps with -ldflags -X. scripts/engine.sh builds
// the main with `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` from a
// copy of this directory.
//
// Why a module of our own: pkg/v3's go.mod has `replace .../sdk/v3 => ../sdk`
// (a local path), so `go install .../cmd/pulumi@version` refuses it. Building a
// main package of a dependency from our own module is allowed.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
	_ "github.com/pulumi/pulumi/sdk/v3/go/common/version"
)
