"""Smoke tests: run with `python3 -m pytest -q` or `python3 -m unittest discover -s tests -t .`."""

import io
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src import __version__  # noqa: E402
from src.app import count, main  # noqa: E402


class SmokeTest(unittest.TestCase):
    def test_version_is_set(self):
        self.assertRegex(__version__, r"^\d+\.\d+\.\d+$")

    def test_count_matches_wc(self):
        self.assertEqual(count("one two\nthree\n"), (2, 3, 14))
        self.assertEqual(count(""), (0, 0, 0))

    def test_main_counts_a_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "a.txt"
            path.write_text("hello world\n", encoding="utf-8")
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(main([str(path)]), 0)
            self.assertIn("1        2       12", out.getvalue())

    def test_a_missing_file_fails_but_is_reported(self):
        err = io.StringIO()
        with redirect_stderr(err), redirect_stdout(io.StringIO()):
            self.assertEqual(main(["/nonexistent/file.txt"]), 1)
        self.assertIn("/nonexistent/file.txt", err.getvalue())


if __name__ == "__main__":
    unittest.main()
