"""Command-line entry point for tally."""

import argparse
import sys

from src import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tally", description="Count lines, words and characters in text files."
    )
    parser.add_argument("--version", action="version", version=f"tally {__version__}")
    parser.add_argument("files", nargs="*", help="files to count ('-' for standard input)")
    return parser


def count(text: str) -> tuple[int, int, int]:
    """Lines, words and characters of a text, as `wc` counts them."""
    return text.count("\n"), len(text.split()), len(text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status = 0
    for name in args.files or ["-"]:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        except OSError as error:
            print(f"tally: {name}: {error.strerror}", file=sys.stderr)
            status = 1
            continue
        lines, words, chars = count(text)
        print(f"{lines:8} {words:8} {chars:8} {name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
