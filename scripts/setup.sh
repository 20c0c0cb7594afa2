#!/usr/bin/env bash
# Installs what berth and its tests need on Debian 12, as root: system packages, then npm dependencies.
# Idempotent. Used by the README's Quick start and by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" != 20 ]; then
  echo "setup: berth needs Node.js 20 (found: $(node --version 2>/dev/null || echo none)); install it first, e.g. from NodeSource or nvm" >&2
  exit 1
fi

# runc + conmon run containers; busybox-static builds the first image; attr sets overlayfs
# xattrs when unpacking layers; iproute2 and nftables for network namespaces, bridges and published
# ports; tmux drives interactive terminals in tests; git makes Git build contexts; openssl makes test
# certificates; skopeo and docker-registry (the CNCF
# distribution registry) are the interop peers of the pull, push and registry tests; skopeo checks our OCI layouts
# in tests; promtool (package prometheus) lints /metrics in tests — only the binary is used,
# so the packaged Prometheus service is kept from starting while installing.
PACKAGES=(runc conmon busybox-static attr iproute2 nftables skopeo docker-registry tmux git openssl prometheus ca-certificates)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "setup: kubectl is not installed; the kubectl compatibility tests need it (apt package kubectl from the Kubernetes repository)" >&2
fi

npm ci --no-audit --no-fund
