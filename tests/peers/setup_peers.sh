#!/usr/bin/env bash
# Create the third-party peer environments the sidecar peer tests run as subprocesses.
#
#   bash tests/peers/setup_peers.sh            # idempotent; a no-op when both are ready
#
# mlserver and tritonclient pin protobuf<7 and conflict with each other (both register
# the `inference` proto package), so each lives in its own virtualenv under .peers/:
#   .peers/mlserver-venv  mlserver 1.7.1 + mlserver-sklearn + scikit-learn; uvloop pinned to
#                         0.21.0 (mlserver 1.7.1 dies at start with uvloop >= 0.22)
#   .peers/triton-venv    tritonclient[grpc] + neural-mlops (no deps) + what its sidecar
#                         modules import, to prove both import into one process
# nginx for the benchmark is a system package: apt-get install -y nginx-light (or nginx).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="${NEURAL_MLOPS_PEERS:-$ROOT/.peers}"
PY="${PYTHON:-python3}"
mkdir -p "$PEERS"

make_venv() {  # name marker-file pip-args...
  local dir="$PEERS/$1" marker="$PEERS/$1/.ready-$2"; shift 2
  if [[ -f "$marker" ]]; then return 0; fi
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install --disable-pip-version-check -q --upgrade pip
  "$dir/bin/pip" install --disable-pip-version-check -q "$@"
  touch "$marker"
}

make_venv mlserver-venv v1 "mlserver==1.7.1" "mlserver-sklearn==1.7.1" "uvloop==0.21.0" "scikit-learn" "numpy<2.3"
make_venv triton-venv v1 "tritonclient[grpc]" "numpy" "structlog" "prometheus-client"
# Our package into both venvs without its deps (protobuf stays at the peers' pin), to
# prove `import neural.mlops` works beside tritonclient and beside mlserver.
for venv in triton-venv mlserver-venv; do
  if [[ ! -f "$PEERS/$venv/.ready-neural" ]]; then
    "$PEERS/$venv/bin/pip" install --disable-pip-version-check -q structlog prometheus-client
    "$PEERS/$venv/bin/pip" install --disable-pip-version-check -q --no-deps -e "$ROOT"
    touch "$PEERS/$venv/.ready-neural"
  fi
done
# The Node.js client's packages (tests/test_node_client.py), when node and npm exist.
# (Re-run when any dependency is missing: package.json grew canonicalize, lossless-json and
# csv-parse for the audit and latency specs.)
node_ready() {
  local dep
  for dep in @grpc/grpc-js @grpc/proto-loader canonicalize lossless-json csv-parse; do
    [[ -d "$ROOT/clients/node/node_modules/$dep" ]] || return 1
  done
}
if command -v npm >/dev/null && ! node_ready; then
  (cd "$ROOT/clients/node" && npm ci --no-audit --no-fund --silent)
fi
command -v npm >/dev/null || echo "node/npm not found: apt-get install nodejs npm for the Node.js client tests"
echo "peers ready in $PEERS"
