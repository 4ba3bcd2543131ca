#!/usr/bin/env bash
# Finds or builds the pinned Jaeger (the `cmd/jaeger` program: all-in-one, with an OTLP receiver)
# and prints its path as the last line of stdout. The trace tests (test/e2e/traces.test.ts) run it
# as a real OTLP backend.
#
#   scripts/jaeger.sh            # cached path, building it first if needed
#   BIN=$(scripts/jaeger.sh | tail -n1)
#
# The version lives only in scripts/jaeger.version (the TS test harness reads it too).
# The binary is cached outside the repo, keyed by version:
#   ${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}/jaeger/<version>/jaeger
# Progress goes to stderr so stdout stays capturable.
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@<version>` does not work: Jaeger's go.mod
# has replace directives, which `go install pkg@version` refuses. So the module is downloaded
# (`go mod download`, from the Go module proxy, checked against the checksum database), copied
# to a writable directory (the module cache is read-only) and built there with its own go.mod.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' <"$here/jaeger.version")"
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "jaeger.sh: bad version '$version' in $here/jaeger.version" >&2
  exit 2
fi

cache_root="${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}"
dest_dir="$cache_root/jaeger/$version"
dest="$dest_dir/jaeger"
log() { echo "jaeger.sh: $*" >&2; }

# A cached binary counts only if it runs and reports the pinned version (stamped at the build,
# below); anything else is rebuilt.
if [[ -x "$dest" ]] && "$dest" version 2>/dev/null | grep -qF "\"gitVersion\":\"$version\""; then
  log "using cached $version"
  echo "$dest"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "ERROR: Go is not installed (or not on PATH), so Jaeger $version cannot be built."
  log "       Install Go >= 1.25, or set JAEGER_BIN to an existing jaeger $version binary."
  exit 1
fi

mkdir -p "$dest_dir"
# Build in a temp dir beside the destination (same filesystem) and rename into place at the end:
# an interrupted or failed build never leaves a partial binary at $dest, and rename is atomic even
# if two builds race.
tmp="$(mktemp -d "$dest_dir/.build.XXXXXX")"
# The copied module keeps the module cache's read-only modes; make it removable before removing.
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT

log "downloading github.com/jaegertracing/jaeger@$version..."
module_dir="$(go mod download -json "github.com/jaegertracing/jaeger@$version" |
  sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$module_dir" || ! -f "$module_dir/go.mod" ]]; then
  log "ERROR: 'go mod download github.com/jaegertracing/jaeger@$version' gave no module directory."
  exit 1
fi
cp -R "$module_dir" "$tmp/src"
chmod -R u+w "$tmp/src"

log "building jaeger $version with $(go version) — this takes several minutes the first time..."
start=$SECONDS
# Pure-Go build, as the official release does (no cgo needed).
# The version is stamped as the release does (without it the binary reports an empty version).
if ! (cd "$tmp/src" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
  go build -ldflags "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version" \
  -o "$tmp/jaeger" ./cmd/jaeger >&2); then
  log "ERROR: building ./cmd/jaeger of github.com/jaegertracing/jaeger@$version failed (see output above)."
  exit 1
fi
if [[ ! -x "$tmp/jaeger" ]] || ! "$tmp/jaeger" version >/dev/null 2>&1; then
  log "ERROR: the build finished but $tmp/jaeger does not run."
  exit 1
fi
mv -f "$tmp/jaeger" "$dest"
log "built $version in $((SECONDS - start)) s -> $dest"
echo "$dest"
