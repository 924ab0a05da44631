"""Learner text made safe to show: no terminal control sequences, no markup, bounded length.

Messages quote what the learner's code raised or printed; a hostile file can put escape codes
there to repaint the terminal ("PASS") or HTML into an instructor's Markdown viewer.
"""

from __future__ import annotations

import html
import re
from typing import TextIO

MAX_MESSAGE = 4000
# ANSI/VT escape sequences (CSI, OSC, and two-character escapes), then any other control
# character but newline and tab; C1 controls included.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]"            # CSI: colours, cursor moves
                      r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, links
                      r"|\x1b[@-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` without control sequences, cut to ``limit`` characters."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    return text if len(text) <= limit else text[:limit] + " …"


def markdown_cell(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one cell of a Markdown table: plain, HTML escaped, one line, pipes escaped."""
    return html.escape(plain(text, limit), quote=False).replace("|", "\\|").replace("\n", " ")


class CappedLog:
    """A text log file that keeps its last ``limit`` characters or so, however much is written:
    a task that prints without end fills neither the grader's memory (``/dev/shm``) nor its disk.
    Reports show a task log's end, where its error is."""

    def __init__(self, file: TextIO, limit: int = 4 << 20) -> None:
        self.file, self.limit, self.written = file, limit, 0

    def write(self, text: str) -> int:
        self.written += len(text)
        if self.written > self.limit:  # keep the newest half, say what was cut
            self.file.flush()
            self.file.seek(0)
            kept = (self.file.read() + text)[-self.limit // 2:] if self.file.readable() else text
            self.file.seek(0)
            self.file.truncate()
            text, self.written = "[... earlier output cut ...]\n" + kept, len(kept)
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
