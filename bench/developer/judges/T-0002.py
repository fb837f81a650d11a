import json
import unittest

from tests.judge_common import run


class JudgeJson(unittest.TestCase):
    def test_json_document(self):
        code, out, _ = run(["--json", "a.txt", "b.txt"], {"a.txt": "one two\n", "b.txt": "three\n"})
        self.assertEqual(code, 0)
        doc = json.loads(out)
        self.assertEqual(
            doc["files"],
            [
                {"name": "a.txt", "lines": 1, "words": 2, "chars": 8},
                {"name": "b.txt", "lines": 1, "words": 1, "chars": 6},
            ],
        )
        self.assertEqual(doc["total"], {"lines": 2, "words": 3, "chars": 14})

    def test_plain_output_unchanged(self):
        code, out, _ = run(["a.txt"], {"a.txt": "hello world\n"})
        self.assertEqual(code, 0)
        self.assertEqual(out, f"{1:8} {2:8} {12:8} a.txt\n")

    def test_missing_file_still_fails(self):
        code, out, err = run(["--json", "/nonexistent/x"], {})
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/x", err)


if __name__ == "__main__":
    unittest.main()
