"""What the terminal can show besides text: hyperlinks (OSC 8) to files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Rich loads where text is drawn for people: JSON output never needs it
    from rich.console import Console


def hyperlinks_enabled(console: Console) -> bool:
    """File paths become terminal hyperlinks (OSC 8) on a terminal that is not dumb nor the Linux console.

    ``FORCE_HYPERLINK=1`` turns them on anywhere and ``FORCE_HYPERLINK=0`` off (the convention of the
    supports-hyperlinks package); terminals without OSC 8 support ignore the sequence.
    """
    force = os.environ.get("FORCE_HYPERLINK")
    if force is not None:
        return force.strip() not in ("", "0", "false", "no")
    if not console.is_terminal or console.is_dumb_terminal:
        return False
    return os.environ.get("TERM", "") != "linux"


def path_style(console: Console, path) -> str:
    """Magenta, and a ``file://`` hyperlink to the file where the terminal shows them."""
    if not hyperlinks_enabled(console):
        return "magenta"
    try:
        uri = Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return "magenta"
    return f"magenta link {uri}"
