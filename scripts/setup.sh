#!/usr/bin/env bash
# Sets up everything trustbridge needs on a fresh Debian machine, from the package registries:
# Debian packages where missing (softhsm2, PostgreSQL server, openssl, poppler-utils, NSS tools,
# tinyproxy), then a virtual environment with the project and its development tools. Safe to run
# repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter of .venv: $PYTHON where set; otherwise the distribution's python3 where it is
# 3.11 or newer, otherwise python3 from PATH. Debian's interpreter is linked statically and
# optimized by Debian; a shared-library build such as pyenv's ran trustbridge's issuance about 7 %
# slower and plain Python code about 25 % slower here (docs/identities.md, "The interpreter").
SYSTEM_PYTHON=/usr/bin/python3
if [ -z "${PYTHON:-}" ] && [ -x "$SYSTEM_PYTHON" ] \
    && "$SYSTEM_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PYTHON=$SYSTEM_PYTHON
fi
PYTHON=${PYTHON:-python3}

need_apt=()
# Debian splits venv and ensurepip out of its interpreter.
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v softhsm2-util >/dev/null 2>&1 || need_apt+=(softhsm2)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
# Independent checks of signed contracts: poppler's pdfsig, with an NSS database from certutil.
command -v pdfsig >/dev/null 2>&1 || need_apt+=(poppler-utils)
command -v certutil >/dev/null 2>&1 || need_apt+=(libnss3-tools)
# The fetcher's [fetch] proxy is tested against a real forward proxy.
command -v tinyproxy >/dev/null 2>&1 || need_apt+=(tinyproxy)
# Browser tests of the web UI: Debian's Chromium, driven by Playwright (no browser download).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The benchmarks compare our OCSP responder with nginx serving exported responses, under wrk.
if [ "${TRUSTBRIDGE_SETUP_BENCH:-0}" = 1 ]; then
    command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
    command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: ${need_apt[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# A .venv made from another interpreter is made again (its packages are reinstalled below).
want=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')
have=$(.venv/bin/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    if [ -n "$have" ]; then
        echo "setup: .venv was made with $have; making it again with $want"
        rm -rf .venv
    fi
    echo "setup: creating .venv ($want)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.setup-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing trustbridge and its tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
fi
# Byte-code for our own sources once (the Makefile runs Python with PYTHONDONTWRITEBYTECODE):
# every `trustbridge` process of the demo and the tests would otherwise compile them again.
.venv/bin/python -m compileall -q src/trustbridge >/dev/null
echo "setup: ready"
