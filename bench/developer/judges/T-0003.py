import unittest

from tests.judge_common import run

DOC = "---\ntitle: x\ntags: [a, b]\n---\nhello world\nbye\n"


class JudgeFrontMatter(unittest.TestCase):
    def test_front_matter_skipped(self):
        code, out, _ = run(["--skip-front-matter", "a.md"], {"a.md": DOC})
        self.assertEqual(code, 0)
        self.assertEqual(out, f"{2:8} {3:8} {16:8} a.md\n")

    def test_without_option_everything_counts(self):
        code, out, _ = run(["a.md"], {"a.md": DOC})
        self.assertEqual(code, 0)
        self.assertEqual(out, f"{6:8} {10:8} {len(DOC):8} a.md\n")

    def test_no_front_matter_unchanged(self):
        code, out, _ = run(["--skip-front-matter", "a.md"], {"a.md": "hello world\n"})
        self.assertEqual(out, f"{1:8} {2:8} {12:8} a.md\n")

    def test_unclosed_block_not_skipped(self):
        text = "---\nhello\n"
        code, out, _ = run(["--skip-front-matter", "a.md"], {"a.md": text})
        self.assertEqual(out, f"{2:8} {2:8} {len(text):8} a.md\n")


if __name__ == "__main__":
    unittest.main()
