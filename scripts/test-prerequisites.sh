#!/usr/bin/env bash
# Runs before `npm test` (the `pretest` script) and in .ci/run: makes sure the Debian packages
# the tests use are installed. Which ones is read from the tests themselves, so the list cannot go
# stale: browser tests launch /usr/bin/chromium, multi-node tests start redis-server, the systemd
# unit's test runs systemd-analyze. As root (or with passwordless sudo) a missing package is
# installed with apt-get; otherwise this names what is missing and how to install it, and fails. (The Go-built livekit-server and Jaeger are the
# tests' global setup's business: scripts/livekit-server.sh and scripts/jaeger.sh, cached in
# ~/.cache/agentstate.)
set -euo pipefail
cd "$(dirname "$0")/.."

needed=()
if grep -rqs --include='*.ts' '/usr/bin/chromium' test src; then
  [[ -x /usr/bin/chromium ]] || needed+=(chromium)
fi
if grep -rqs --include='*.ts' 'redis-server' test src; then
  command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
fi
# The systemd unit's test verifies deploy/systemd/ with systemd-analyze (Debian's `systemd`).
if grep -rqs --include='*.ts' 'systemd-analyze' test src; then
  command -v systemd-analyze >/dev/null 2>&1 || needed+=(systemd)
fi
[[ ${#needed[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  else
    echo "test prerequisites: missing Debian packages: ${needed[*]}" >&2
    echo "  install them with: sudo apt-get update && sudo apt-get install -y ${needed[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test prerequisites: missing ${needed[*]} and no apt-get to install them; install them by hand" >&2
  exit 1
fi
echo "test prerequisites: installing ${needed[*]} with apt-get" >&2
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${needed[@]}"
