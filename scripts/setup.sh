#!/usr/bin/env bash
# Installs what berth and its tests need on Debian 12, as root: system packages, then npm dependencies.
# Idempotent. Used by the README's Quick start and by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool (package prometheus) lints /metrics in tests; only the binary is used, so keep
# the packaged Prometheus service from starting while installing.
PACKAGES=(prometheus ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "setup: kubectl is not installed; the kubectl compatibility tests need it (apt package kubectl from the Kubernetes repository)" >&2
fi

npm ci --no-audit --no-fund
