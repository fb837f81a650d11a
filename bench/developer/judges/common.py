"""Shared helpers for the hidden judging tests: run tally's main() and capture its output."""

import io
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(args, files):
    """Writes `files` ({name: text}) into a temp dir, runs main(args with names resolved)."""
    from src.app import main

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, text in files.items():
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths[name] = str(path)
        argv = [paths.get(a, a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse
                code = e.code
        text = out.getvalue()
        for name, path in paths.items():
            text = text.replace(path, name)
        return code, text, err.getvalue()
