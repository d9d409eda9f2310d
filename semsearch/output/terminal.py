"""What the terminal can show besides text (styles, hyperlinks (OSC 8) to files), and plain output where it
shows nothing but text: a pipe or a file gets its lines without loading Rich (about 15 ms of a warm query)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # Rich loads where text is drawn for people: JSON output never needs it
    from rich.console import Console


class PlainConsole:
    """Where Rich would style nothing (output is not a terminal, colour and hyperlinks not forced): the same
    lines, written directly. Only what hit lists print goes through it (``print_pieces``)."""

    is_terminal = False
    is_dumb_terminal = False

    def __init__(self, file: TextIO):
        self.file = file


def styled_output(stream: TextIO) -> bool:
    """Whether Rich's console on ``stream`` would write styles: Rich's own rule for a terminal (TTY_COMPATIBLE,
    then FORCE_COLOR, then isatty), or hyperlinks forced on."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        terminal = compatible == "1"
    elif "FORCE_COLOR" in os.environ:
        terminal = os.environ["FORCE_COLOR"] != ""
    else:
        try:
            terminal = stream.isatty()
        except (AttributeError, ValueError):
            terminal = False
    return terminal or _forced_hyperlinks() is True


def text_console(stream: TextIO) -> Console | PlainConsole:
    """A console to print hits on: Rich's when it would style them, else a plain writer."""
    if styled_output(stream):
        from rich.console import Console

        return Console(file=stream, highlight=False, soft_wrap=True)
    return PlainConsole(stream)


def print_pieces(console: Console | PlainConsole, pieces: list[tuple[str, str]]) -> None:
    """One line of (text, Rich style) pieces."""
    if isinstance(console, PlainConsole):
        console.file.write("".join(text for text, _ in pieces) + "\n")
        return
    from rich.text import Text

    console.print(Text.assemble(*pieces), soft_wrap=True)


def _forced_hyperlinks() -> bool | None:
    force = os.environ.get("FORCE_HYPERLINK")
    if force is None:
        return None
    return force.strip() not in ("", "0", "false", "no")


def hyperlinks_enabled(console: Console | PlainConsole) -> bool:
    """File paths become terminal hyperlinks (OSC 8) on a terminal that is not dumb nor the Linux console.

    ``FORCE_HYPERLINK=1`` turns them on anywhere and ``FORCE_HYPERLINK=0`` off (the convention of the
    supports-hyperlinks package); terminals without OSC 8 support ignore the sequence.
    """
    forced = _forced_hyperlinks()
    if forced is not None:
        return forced
    if not console.is_terminal or console.is_dumb_terminal:
        return False
    return os.environ.get("TERM", "") != "linux"


def path_style(console: Console | PlainConsole, path) -> str:
    """Magenta, and a ``file://`` hyperlink to the file where the terminal shows them."""
    if not hyperlinks_enabled(console):
        return "magenta"
    try:
        uri = Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return "magenta"
    return f"magenta link {uri}"


def stderr_console():
    """Rich's console on stderr, for messages and progress."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console():
    """Rich's console on stdout, for reports people read."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)
