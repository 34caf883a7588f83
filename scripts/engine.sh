#!/usr/bin/env bash
# Build (or reuse from the cache) the real Pulumi engine for the e2e runs, from Go modules fetched
# through the machine's Go module proxy: the CLI `pulumi`, the Python language host
# `pulumi-language-python` with its `pulumi-language-python-exec` script, and the provider plugins
# listed in engine/providers.tsv where the proxy serves them.
#
#   bash scripts/engine.sh        # progress on stderr; LAST line of stdout = the bin directory
#
# Environment:
#   PGPLAT_CACHE                 cache root (default /var/cache/postgres-platform; falls back to
#                                ~/.cache/postgres-platform when that cannot be created)
#   PGPLAT_ENGINE_REBUILD=1      ignore a cached build of the same key and build again
#   PGPLAT_ENGINE_STRICT=1       exit 3 (after printing the directory) if any provider is missing
#
# The bin directory holds MANIFEST (what was built, from which module version, and why a provider
# is missing). Use it with PATH="$dir:$PATH" PULUMI_SKIP_UPDATE_CHECK=true
# PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true. See engine/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
engine_src="$(cd "$here/../engine" && pwd)"

log() { printf 'engine.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH"

# Versions. CLI_VERSION must match engine/cli/go.mod, LANGHOST_* engine/langhost/go.mod.
CLI_VERSION=v3.274.0          # nearest served to the Python SDK's 3.272.0 (3.272.0/3.273.0 refused)
LANGHOST_VERSION=v3.188.0     # pkg/sdk version the language host is built against (see its go.mod)
EXEC_SDK_VERSION="$CLI_VERSION"   # sdk/v3 zip that pulumi-language-python-exec is copied from
VERSION_PKG=github.com/pulumi/pulumi/sdk/v3/go/common/version
# Bump when this script's build steps change in a way that changes the output.
RECIPE=2

# --- cache locations -------------------------------------------------------------------------
cache_root="${PGPLAT_CACHE:-/var/cache/postgres-platform}"
if ! mkdir -p "$cache_root" 2>/dev/null || [ ! -w "$cache_root" ]; then
	if [ -n "${PGPLAT_CACHE:-}" ]; then die "cannot write PGPLAT_CACHE=$cache_root"; fi
	cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/postgres-platform"
	mkdir -p "$cache_root"
	log "using $cache_root (/var/cache/postgres-platform is not writable)"
fi
export GOPATH="$cache_root/go"
export GOMODCACHE="$GOPATH/pkg/mod"
export GOCACHE="$GOPATH/cache"
# GOPROXY, GOFLAGS, GOSUMDB are the machine's own: deliberately not touched here.

# The key: versions, this script's recipe, the module files it builds from, the Go toolchain.
go_version="$(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
key_input="$(
	printf 'recipe=%s cli=%s langhost=%s exec=%s go=%s\n' \
		"$RECIPE" "$CLI_VERSION" "$LANGHOST_VERSION" "$EXEC_SDK_VERSION" "$go_version"
	cd "$engine_src" && find . -type f \( -name 'go.mod' -o -name 'go.sum' -o -name '*.go' -o -name '*.tsv' \) \
		-print | LC_ALL=C sort | while IFS= read -r f; do printf '%s ' "$f"; sha256sum <"$f"; done
)"
key="pulumi-${CLI_VERSION}-$(printf '%s' "$key_input" | sha256sum | cut -c1-12)"
engine_root="$cache_root/engine"
out="$engine_root/$key"
mkdir -p "$engine_root"

finish() {
	# $1: the bin directory. Prints it last on stdout; strict mode fails on missing providers.
	if [ -s "$1/MISSING" ]; then
		log "missing plugins: $(tr '\n' ' ' <"$1/MISSING")(see $1/MANIFEST)"
		if [ "${PGPLAT_ENGINE_STRICT:-0}" = 1 ]; then printf '%s\n' "$1"; exit 3; fi
	fi
	printf '%s\n' "$1"
	exit 0
}

if [ "${PGPLAT_ENGINE_REBUILD:-0}" != 1 ] && [ -f "$out/.complete" ]; then
	log "cache hit: $out"
	touch "$out" # its mtime is what the pruning below goes by
	finish "$out"
fi

# One build at a time per cache (a developer and CI on one machine); re-check after the wait.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$engine_root/.lock"
	flock 9
	if [ "${PGPLAT_ENGINE_REBUILD:-0}" != 1 ] && [ -f "$out/.complete" ]; then
		log "cache hit after waiting for another build: $out"
		finish "$out"
	fi
fi

# --- build into a temporary directory, moved into place at the end ---------------------------
# Leftovers of a build killed hard (the lock above keeps any other build out of here).
rm -rf "$engine_root"/.build.*
tmp="$(mktemp -d "$engine_root/.build.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
bin="$tmp/bin"
mkdir -p "$bin"
start=$SECONDS
manifest="$bin/MANIFEST"
: >"$bin/MISSING"
{
	printf '# built by scripts/engine.sh on %s with %s; key %s\n' "$(date -u +%FT%TZ)" "$go_version" "$key"
	printf '# binary\tversion stamped\tbuilt from\n'
} >"$manifest"

# go_build MODULE_COPY_DIR OUTPUT PACKAGE VERSION_STAMP [extra -X assignments...]
go_build() {
	local dir="$1" output="$2" pkg="$3" stamp="$4"
	shift 4
	local ldflags="-s -w -X $VERSION_PKG.Version=$stamp"
	local x
	for x in "$@"; do ldflags="$ldflags -X $x"; done
	log "go build $pkg ($stamp)"
	(cd "$dir" && nice -n 10 go build -trimpath -mod=readonly -ldflags "$ldflags" -o "$output" "$pkg")
}

# CLI
cp -R "$engine_src/cli" "$tmp/cli"
go_build "$tmp/cli" "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$CLI_VERSION"
printf 'pulumi\t%s\tgithub.com/pulumi/pulumi/pkg/v3@%s\n' "$CLI_VERSION" "$CLI_VERSION" >>"$manifest"

# Python language host. Its pseudo-version has no sumdb entry here (404); go.sum is checked in, and
# GONOSUMDB only lets `go` skip that lookup for this one module path: the hash must still match.
cp -R "$engine_src/langhost" "$tmp/langhost"
lh_mod=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
lh_ver="$(cd "$tmp/langhost" && go list -m -f '{{.Version}}' "$lh_mod")"
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python"
go_build "$tmp/langhost" "$bin/pulumi-language-python" "$lh_mod" "$LANGHOST_VERSION"
printf 'pulumi-language-python\t%s\t%s@%s (against pkg/sdk %s)\n' \
	"$LANGHOST_VERSION" "$lh_mod" "$lh_ver" "$LANGHOST_VERSION" >>"$manifest"

# Its executor script ships in the sdk/v3 module zip; the host exits with "missing executor"
# unless it lies beside it.
sdk_dir="$(cd "$tmp/cli" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@$EXEC_SDK_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -f "$sdk_dir/python/cmd/pulumi-language-python-exec" ] || die "no pulumi-language-python-exec in $sdk_dir"
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
printf 'pulumi-language-python-exec\t-\tgithub.com/pulumi/pulumi/sdk/v3@%s python/cmd/\n' "$EXEC_SDK_VERSION" >>"$manifest"

# The plugin that serves Python dynamic providers (the program's SqlApply and RoleRetirement): a script
# of the same sdk/v3 zip, shipped beside `pulumi` in Pulumi's own releases.
for script in pulumi-resource-pulumi-python pulumi-analyzer-policy-python; do
	if [ -f "$sdk_dir/python/dist/$script" ]; then
		install -m 0755 "$sdk_dir/python/dist/$script" "$bin/$script"
		printf '%s\t-\tgithub.com/pulumi/pulumi/sdk/v3@%s python/dist/\n' "$script" "$EXEC_SDK_VERSION" >>"$manifest"
	fi
done

# Providers: ask the proxy for each candidate once per cold build; record the answer.
while IFS=$'\t' read -r plugin target module candidate main_pkg; do
	case "$plugin" in '' | '#'*) continue ;; esac
	log "provider $plugin $target: asking for $module@$candidate"
	if answer="$(cd "$tmp/cli" && go mod download -json "$module@$candidate" 2>&1)" &&
		! grep -q '"Error"' <<<"$answer"; then
		reason="served, but no build recipe is written for it yet (engine/README.md, Providers)"
	else
		err="$(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$answer" | head -n1)"
		reason="not served: ${err:-$(tail -n1 <<<"$answer")}"
		reason="${reason//\\n\\t/ }"
	fi
	log "provider $plugin: $reason"
	printf 'pulumi-resource-%s\tMISSING (wanted %s)\t%s@%s %s; main %s\n' \
		"$plugin" "$target" "$module" "$candidate" "$reason" "$main_pkg" >>"$manifest"
	printf 'pulumi-resource-%s\n' "$plugin" >>"$bin/MISSING"
done <"$engine_src/providers.tsv"

"$bin/pulumi" version >/dev/null || die "the built pulumi does not run"
touch "$bin/.complete"

# Builds of other keys not used for 30 days go (each is ~150 MB).
find "$engine_root" -mindepth 1 -maxdepth 1 -type d -name 'pulumi-*' ! -name "$key" -mtime +30 \
	-exec rm -rf {} + 2>/dev/null || true

# Move into place: rename is atomic, so an interrupted build never leaves a half directory at $out.
rm -rf "$out"
mv "$bin" "$out"
log "built in $((SECONDS - start))s: $out"
finish "$out"
