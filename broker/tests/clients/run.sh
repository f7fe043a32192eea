#!/usr/bin/env bash
# Runs the real-client suite against target/release/eoslog-broker (or $EOSLOG_BROKER_BIN).
# Installs the clients first (install.sh) unless EOSLOG_SKIP_INSTALL=1. Extra arguments go to
# pytest, e.g. `run.sh -k zombie` or `run.sh test_pipeline.py`. Exits non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${EOSLOG_CLIENTS_VENV:-$repo/target/clients-venv}"

if [[ "${EOSLOG_SKIP_INSTALL:-0}" != 1 ]]; then
    bash "$here/install.sh"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "run.sh: no venv at $venv (run install.sh, or unset EOSLOG_SKIP_INSTALL)" >&2
    exit 1
fi
bin="${EOSLOG_BROKER_BIN:-$repo/target/release/eoslog-broker}"
if [[ ! -x "$bin" ]]; then
    echo "run.sh: broker binary $bin not found: cargo build --release -p eoslog-broker" >&2
    exit 1
fi
cd "$here"
exec "$venv/bin/python" -m pytest -x -q --durations=12 "$@"
