#!/usr/bin/env bash
# Runs a command on a supported Node: the `node` on PATH when it is one of the lines pinned in
# scripts/node.versions (the lines CI tests) and at least package.json's `engines.node` floor,
# else the newest pinned one, fetched once by
# scripts/node.sh and put first on PATH, so npm, npx, vitest, tsx and every child process they
# start run on it too. `npm test` and `npm run demo` go through this.
#
#   scripts/with-node.sh vitest run           # on PATH's node if supported, else on the pinned 26
#   AGENTSTATE_NODE=22 scripts/with-node.sh vitest run --project package   # on the pinned 22
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "with-node.sh: $*" >&2; }
[[ $# -gt 0 ]] || { log "usage: scripts/with-node.sh COMMAND [ARGS...]"; exit 2; }

mapfile -t pinned < <(grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' "$here/node.versions")
lines=("${pinned[@]%%.*}")
# `"node": ">=22.15.0"` in package.json's engines: the lowest release of the lowest line.
floor="$(sed -nE 's/^ *"node": *">=([0-9]+\.[0-9]+\.[0-9]+)".*/\1/p' "$here/../package.json" | head -n 1)"
[[ -n "$floor" ]] || { log "no \"node\": \">=X.Y.Z\" in package.json's engines"; exit 2; }

# Whether version $1 (x.y.z) is at least $2.
at_least() {
  local IFS=.
  local -a a=($1) b=($2)
  for i in 0 1 2; do
    ((a[i] > b[i])) && return 0
    ((a[i] < b[i])) && return 1
  done
  return 0
}

use_pinned() {
  local node
  node="$("$here/node.sh" "$1" | tail -n 1)"
  # npm finds its global npmrc (a registry, a CA file) under its prefix, which defaults to the
  # prefix of the node running it: keep the one the npm on PATH had, so the settings stay.
  if [[ -z "${npm_config_prefix:-}" ]] && command -v npm >/dev/null 2>&1; then
    npm_config_prefix="$(npm prefix -g 2>/dev/null || true)"
    [[ -n "$npm_config_prefix" ]] && export npm_config_prefix
  fi
  export PATH="$(dirname "$node"):$PATH"
}

if [[ -n "${AGENTSTATE_NODE:-}" ]]; then
  use_pinned "$AGENTSTATE_NODE"
else
  current="$(node --version 2>/dev/null || true)"
  major="${current#v}"
  major="${major%%.*}"
  supported=false
  for l in "${lines[@]}"; do [[ "$major" == "$l" ]] && supported=true; done
  if [[ "$supported" == true ]] && ! at_least "${current#v}" "$floor"; then supported=false; fi
  if [[ "$supported" != true ]]; then
    log "the node on PATH is ${current:-missing}, not one agentstate supports and tests (>= $floor, on the lines ${lines[*]}):"
    log "running on the pinned Node ${pinned[-1]} instead (scripts/node.sh ${lines[-1]}, fetched once into ${AGENTSTATE_CACHE:-$HOME/.cache/agentstate}/node/)"
    use_pinned "${lines[-1]}"
  fi
fi
log "$(command -v node) $(node --version)"
exec "$@"
