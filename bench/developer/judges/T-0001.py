import unittest

from tests.judge_common import run


class JudgeTotal(unittest.TestCase):
    def test_two_files_get_a_total_line(self):
        code, out, _ = run(["a.txt", "b.txt"], {"a.txt": "one two\n", "b.txt": "three\nfour five\n"})
        self.assertEqual(code, 0)
        lines = out.strip("\n").split("\n")
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(lines[2], f"{3:8} {5:8} {24:8} total")
        self.assertTrue(lines[0].endswith("a.txt"))

    def test_one_file_has_no_total(self):
        code, out, _ = run(["a.txt"], {"a.txt": "one two\n"})
        self.assertEqual(code, 0)
        self.assertNotIn("total", out)
        self.assertEqual(len(out.strip("\n").split("\n")), 1)

    def test_missing_file_not_in_total(self):
        code, out, _ = run(["a.txt", "/nonexistent/x", "b.txt"], {"a.txt": "a\n", "b.txt": "b c\n"})
        self.assertEqual(code, 1)
        self.assertEqual(out.strip("\n").split("\n")[-1], f"{2:8} {3:8} {6:8} total")


if __name__ == "__main__":
    unittest.main()
