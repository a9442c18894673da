#!/usr/bin/env bash
# Installs the non-Python tools the test suite uses (promtool from Debian's prometheus package).
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
