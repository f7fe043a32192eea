#!/usr/bin/env bash
# Installs the real Kafka clients that tests/clients drives, idempotently:
#   - a Python venv with the pinned clients and pytest (requirements.txt),
#   - kcat from Debian's packages (skipped with a warning where apt is absent),
#   - kafkajs from node/package-lock.json with `npm ci` (skipped where node/npm is absent).
# Environment:
#   EOSLOG_CLIENTS_VENV  venv path (default <repo>/target/clients-venv)
#   PYTHON               interpreter to create the venv with (default python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${EOSLOG_CLIENTS_VENV:-$repo/target/clients-venv}"
python="${PYTHON:-python3}"

log() { printf 'install.sh: %s\n' "$*" >&2; }
warn() { printf 'install.sh: WARNING: %s\n' "$*" >&2; }

# --- Python clients -----------------------------------------------------------------
req="$here/requirements.txt"
stamp="$venv/.eoslog-clients-requirements"
if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$req" "$stamp"; then
    log "venv $venv is up to date"
else
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating venv $venv"
        mkdir -p "$(dirname "$venv")"
        if ! "$python" -m venv "$venv"; then
            # Debian's python3 needs python3-venv (ensurepip) for this
            rm -rf "$venv"
            if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 || -n "$(command -v sudo)" ]]; then
                sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
                log "python -m venv failed; installing python3-venv"
                DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv >&2 \
                    || { $sudo apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv >&2; }
                "$python" -m venv "$venv"
            else
                echo "install.sh: cannot create a venv with $python" >&2
                exit 1
            fi
        fi
    fi
    log "installing $(grep -cv '^#' "$req") pinned packages into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    cp "$req" "$stamp"
fi
"$venv/bin/python" - <<'PY'
import confluent_kafka, kafka, aiokafka, pytest
print("install.sh: confluent-kafka %s (librdkafka %s), kafka-python %s, aiokafka %s, pytest %s"
      % (confluent_kafka.__version__, confluent_kafka.libversion()[0],
         kafka.__version__, aiokafka.__version__, pytest.__version__))
PY

# --- kcat ---------------------------------------------------------------------------------
if command -v kcat >/dev/null 2>&1; then
    log "kcat present: $(command -v kcat)"
elif command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else sudo="__none__"; fi
    fi
    if [[ "$sudo" == "__none__" ]]; then
        warn "not root and no sudo: kcat not installed; the kcat tests will skip"
    else
        export DEBIAN_FRONTEND=noninteractive
        if ! $sudo apt-get install -y -q kcat >&2; then
            log "apt-get install failed; running apt-get update and retrying"
            $sudo apt-get update -q >&2 || true
            $sudo apt-get install -y -q kcat >&2 || warn "kcat could not be installed; the kcat tests will skip"
        fi
    fi
else
    warn "apt-get not available: kcat not installed; the kcat tests will skip"
fi

# --- kafkajs ------------------------------------------------------------------------------
nodedir="$here/node"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    want="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/kafkajs"].version)' "$nodedir/package-lock.json")"
    have=""
    if [[ -f "$nodedir/node_modules/kafkajs/package.json" ]]; then
        have="$(node -e 'console.log(require(process.argv[1]).version)' "$nodedir/node_modules/kafkajs/package.json")"
    fi
    if [[ "$have" == "$want" && "$nodedir/node_modules/.package-lock.json" -nt "$nodedir/package-lock.json" ]]; then
        log "kafkajs $have is up to date"
    else
        log "npm ci in $nodedir"
        (cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
    log "node $(node --version), kafkajs $(node -e 'console.log(require(process.argv[1]).version)' "$nodedir/node_modules/kafkajs/package.json")"
else
    warn "node/npm not found: kafkajs not installed; the kafkajs tests will skip"
fi
log "done"
