"""Line breaks as a token: the turns of a dialogue stay apart.

A source may span several lines (a dialogue, one turn a line). Line files
hold one record a line, and tokenizers split on whitespace, so a line break
would otherwise vanish; instead it becomes `LINE_BREAK`, a symbol the
tokenizers keep as a token of its own. Record files are written with it
(`data.records`), and both tokenizers put it in place of "\\n" in the graph,
so an export takes a dialogue as a string with newlines, and gives any
`LINE_BREAK` it writes back as "\\n".
"""

import re

import tensorflow as tf

LINE_BREAK = "\u23ce"  # ⏎
_BREAK = r"\r\n|\n|\r"


def mark_line_breaks(text):
    """str -> str: each line break as " ⏎ " (for writing line files)."""
    return re.sub(_BREAK, f" {LINE_BREAK} ", text)


def mark_line_breaks_in_graph(strings):
    """string tensor -> the same with each line break as " ⏎ "."""
    return tf.strings.regex_replace(strings, _BREAK, f" {LINE_BREAK} ")


def restore_line_breaks_in_graph(strings):
    """string tensor -> the same with each ⏎ (and the spaces around it) as "\\n"."""
    return tf.strings.regex_replace(strings, f" ?{LINE_BREAK} ?", "\n")
