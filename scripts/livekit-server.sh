#!/usr/bin/env bash
# Finds or builds the pinned livekit-server and prints its path as the last line of stdout.
#
#   scripts/livekit-server.sh            # cached path, building it first if needed
#   BIN=$(scripts/livekit-server.sh | tail -n1)
#
# The version lives only in scripts/livekit-server.version (the TS test harness reads it too).
# The binary is cached outside the repo, keyed by version:
#   ${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}/livekit-server/<version>/server
# Progress goes to stderr so stdout stays capturable.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' <"$here/livekit-server.version")"
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "livekit-server.sh: bad version '$version' in $here/livekit-server.version" >&2
  exit 2
fi

cache_root="${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}"
dest_dir="$cache_root/livekit-server/$version"
dest="$dest_dir/server"
log() { echo "livekit-server.sh: $*" >&2; }

# A cached binary counts only if it runs and reports the pinned version; anything else is rebuilt.
if [[ -x "$dest" ]] && "$dest" --version 2>/dev/null | grep -qF "version ${version#v}"; then
  log "using cached $version"
  echo "$dest"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "ERROR: Go is not installed (or not on PATH), so livekit-server $version cannot be built."
  log "       Install Go >= 1.26, or set LIVEKIT_SERVER_BIN to an existing livekit-server $version binary."
  exit 1
fi

mkdir -p "$dest_dir"
# Build into a temp dir beside the destination (same filesystem) and rename into place at the end:
# an interrupted or failed build never leaves a partial binary at $dest, and rename is atomic even
# if two builds race.
tmp="$(mktemp -d "$dest_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "building livekit-server $version with $(go version) — this takes a few minutes the first time..."
start=$SECONDS
# Pure-Go build, as the official release does (no cgo needed).
if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
  go install "github.com/livekit/livekit-server/cmd/server@$version" >&2; then
  log "ERROR: 'go install github.com/livekit/livekit-server/cmd/server@$version' failed (see output above)."
  exit 1
fi
if [[ ! -x "$tmp/server" ]] || ! "$tmp/server" --version >/dev/null 2>&1; then
  log "ERROR: the build finished but $tmp/server does not run."
  exit 1
fi
mv -f "$tmp/server" "$dest"
log "built $version in $((SECONDS - start)) s -> $dest"
echo "$dest"
