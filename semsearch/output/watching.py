"""What a foreground watcher shows on a terminal: log records on stderr and a live one-line status."""

from __future__ import annotations

import logging
import time


class ConsoleLog(logging.Handler):
    """Log records on stderr (above the status line on a terminal)."""

    def __init__(self, console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.console.print(f"{stamp} {record.getMessage()}", markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


class StatusLine:
    """The live one-line status on a terminal: roots watched, last update, pending changes."""

    def __init__(self, console):
        self.console = console
        self.state = None
        self._live = None

    def update(self, state) -> None:
        self.state = state
        if self._live is None and state.phase == "watching":
            from rich.live import Live

            self._live = Live(get_renderable=self._render, console=self.console, transient=True, refresh_per_second=2)
            self._live.start()

    def _render(self):
        from rich.text import Text

        s = self.state
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("● ", style="green")
        text.append(f"watching {len(s.roots)} {'root' if len(s.roots) == 1 else 'roots'}")
        if s.last_sync:
            ago = int(time.time() - s.last_sync)
            ago_text = f"{ago} s" if ago < 60 else f"{ago // 60} min" if ago < 3600 else f"{ago // 3600} h"
            when = time.strftime("%H:%M:%S", time.localtime(s.last_sync))
            text.append(f" · updated {when} ({ago_text} ago)", style="dim")
            if s.last_change and s.last_change != "no change":
                text.append(f": {s.last_change}", style="dim")
        if s.indexing:
            text.append(f" · indexing {s.indexed}/{s.indexing}", style="yellow")
        text.append(f" · {s.pending} pending", style="yellow" if s.pending else "dim")
        if s.errors:
            text.append(f" · {s.errors} skipped (see log)", style="red")
        return text

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
