#!/usr/bin/env python3
"""The Developer benchmark: a real model on tasks whose judging tests it never sees.

For each task in bench/developer/tasks/ (and each run), this script makes a fresh local-forge
origin from sample-target/ with the task file committed, runs `gaffer run developer --task`
against it with the model given, then judges what came out:

  right    a PR moved the task to in_review and the hidden tests in bench/developer/judges/
           pass on its branch (the repo's own tests must pass too);
  wrong    a PR moved the task to in_review but the hidden tests (or the repo's) fail;
  blocked  the PR only moved the task to blocked (gaffer said it could not do it);
  error    gaffer exited non-zero, hung past --timeout, or produced no PR at all.

It prints a line per run and a summary (counts, wall time and model tokens per task) and
writes everything to --out as JSON. It prints figures; it asserts nothing.

  scripts/bench-developer.py --gaffer target/debug/gaffer \
      --url http://127.0.0.1:11434 --model qwen2.5-coder:1.5b --runs 1

Extra gaffer settings can be passed with --set NAME=VALUE (repeatable), e.g.
--set LLM_DEVELOPER_EDIT_FORMAT=diff to measure one edit format.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "bench" / "developer" / "tasks"
JUDGES = ROOT / "bench" / "developer" / "judges"
SAMPLE = ROOT / "sample-target"
REPO = "bench/tally"


def git(*args, cwd):
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def make_origin(tmp: Path, task_file: Path) -> Path:
    """A bare origin holding sample-target plus the task, on `main`."""
    seed = tmp / "seed"
    shutil.copytree(SAMPLE, seed, ignore=shutil.ignore_patterns(".git"))
    shutil.copy(task_file, seed / "tasks" / task_file.name)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    origin = tmp / "origin.git"
    git("clone", "-q", "--bare", str(seed), str(origin), cwd=tmp)
    return origin


def gaffer_env(tmp: Path, args) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "GAFFER_DATA_DIR": str(tmp / "data"),
        "GAFFER_LOCAL_ROOT": str(tmp),
        "GAFFER_LOG": "warn",
        "OLLAMA_BASE_URL": args.url,
        "LLM_PLANNER_MODEL": "none",
        "LLM_TASKMASTER_MODEL": "none",
        "LLM_REVIEWER_MODEL": "none",
        "LLM_INTEGRATOR_MODEL": "none",
        "LLM_DEVELOPER_MODEL": args.model,
        "LLM_DEVELOPER_NUM_CTX": str(args.num_ctx),
        "GITHUB_WRITE_GAP_MS": "0",
    }
    for pair in args.set:
        name, _, value = pair.partition("=")
        env[name] = value
    return env


def model_usage(db: Path) -> dict:
    if not db.exists():
        return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    with sqlite3.connect(db) as conn:
        calls, prompt, completion = conn.execute(
            "SELECT count(*), coalesce(sum(prompt_tokens),0), coalesce(sum(completion_tokens),0)"
            " FROM llm_calls WHERE role = 'developer'"
        ).fetchone()
    return {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion}


def judge(tmp: Path, origin: Path, branch: str, task_id: str) -> dict:
    """Runs the repo's tests and the hidden judge on the PR's branch."""
    work = tmp / "judge"
    git("clone", "-q", "-b", branch, str(origin), str(work), cwd=tmp)
    status = "?"
    for task in (work / "tasks").glob(f"{task_id}-*.md"):
        for line in task.read_text(encoding="utf-8").splitlines():
            if line.startswith("status:"):
                status = line.split(":", 1)[1].split("#")[0].strip()
    shutil.copy(JUDGES / "common.py", work / "tests" / "judge_common.py")
    shutil.copy(JUDGES / f"{task_id}.py", work / "tests" / "test_hidden_judge.py")

    def run(cmd):
        try:
            p = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=120)
            return p.returncode == 0, (p.stdout + p.stderr)[-1500:]
        except subprocess.TimeoutExpired:
            return False, "timed out"

    own_ok, own_out = run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-p", "test_[!h]*.py"]
    )
    hidden_ok, hidden_out = run([sys.executable, "-m", "unittest", "tests.test_hidden_judge", "-v"])
    changed = subprocess.run(
        ["git", "diff", "--stat", "origin/main...HEAD"], cwd=work, capture_output=True, text=True
    ).stdout
    tests_changed = any(
        line.strip().startswith("tests/") for line in changed.splitlines() if "|" in line
    )
    return {
        "task_status": status,
        "own_tests_pass": own_ok,
        "hidden_tests_pass": hidden_ok,
        "tests_changed": tests_changed,
        "diffstat": changed.strip().splitlines()[-1:] or [""],
        "hidden_output": hidden_out if not hidden_ok else "",
        "own_output": own_out if not own_ok else "",
    }


def one_run(args, task_file: Path) -> dict:
    task_id = task_file.name[:6]
    tmp = Path(tempfile.mkdtemp(prefix="gaffer-bench-"))
    origin = make_origin(tmp, task_file)
    env = gaffer_env(tmp, args)
    gaffer = str(Path(args.gaffer).resolve())
    subprocess.run(
        [gaffer, "repos", "add", REPO, "--mode", "pr", "--forge", "local", "--clone-url", f"file://{origin}"],
        cwd=tmp, env=env, check=True, capture_output=True,
    )
    started = time.monotonic()
    result = {"task": task_id, "dir": str(tmp)}
    try:
        p = subprocess.run(
            [gaffer, "--json", "run", "developer", REPO, "--task", task_id],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=args.timeout,
        )
        result["exit"] = p.returncode
        result["stderr"] = p.stderr[-2000:]
        try:
            outcome = json.loads(p.stdout)
        except json.JSONDecodeError:
            outcome = {"raw": p.stdout[-2000:]}
    except subprocess.TimeoutExpired:
        result["exit"] = "timeout"
        outcome = {}
    result["seconds"] = round(time.monotonic() - started, 1)
    result.update(model_usage(tmp / "data" / "gaffer.db"))
    found = outcome.get("outcome", outcome)
    result["action"] = found.get("action")
    result["summary"] = found.get("summary")
    result["stats"] = (found.get("detail") or {}).get("stats")
    branch = (found.get("pr") or {}).get("branch")
    if branch:
        result.update(judge(tmp, origin, branch, task_id))
    if not branch:
        result["verdict"] = "error"
    elif result.get("task_status") == "blocked":
        result["verdict"] = "blocked"
    elif result.get("hidden_tests_pass") and result.get("own_tests_pass"):
        result["verdict"] = "right"
    else:
        result["verdict"] = "wrong"
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gaffer", default=str(ROOT / "target" / "debug" / "gaffer"))
    parser.add_argument("--url", default=os.environ.get("OLLAMA_BASE_URL", "http://127.0.0.1:11435"))
    parser.add_argument("--model", default="qwen2.5-coder:1.5b")
    parser.add_argument("--num-ctx", type=int, default=8192)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tasks", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE for gaffer")
    parser.add_argument("--out", default="bench-developer.json")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory")
    args = parser.parse_args()
    wanted = [t for t in args.tasks.split(",") if t]
    tasks = sorted(p for p in TASKS.glob("T-*.md") if not wanted or p.name[:6] in wanted)
    results = []
    for task_file in tasks:
        for n in range(args.runs):
            r = one_run(args, task_file)
            results.append(r)
            print(
                f"{r['task']} run {n + 1}: {r['verdict']:7} {r['seconds']:7.1f} s "
                f"{r['calls']:3} calls {r['prompt_tokens']:7} prompt + {r['completion_tokens']:6} "
                f"completion tokens | {r.get('summary')}",
                flush=True,
            )
            Path(args.out).write_text(json.dumps(results, indent=2))
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in ("right", "wrong", "blocked", "error")}
    n = max(len(results), 1)
    print(
        f"\n{args.model}: {len(results)} runs: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f"; per task {sum(r['seconds'] for r in results) / n:.0f} s, "
        f"{sum(r['prompt_tokens'] for r in results) / n:.0f} prompt + "
        f"{sum(r['completion_tokens'] for r in results) / n:.0f} completion tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
