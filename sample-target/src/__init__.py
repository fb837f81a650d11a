"""tally: line, word and character counts for text files."""

__version__ = "0.1.0"
