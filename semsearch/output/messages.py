"""One line on stderr for what went wrong (an error, Ctrl-C, a closed pipe) and for library notices.

Shared by the full command line and the light query entry; imports nothing heavy until it prints.
"""

from __future__ import annotations

from semsearch.errors import ExitCode, SemsearchError, quiet_stdout


def setup_logging() -> None:
    """Library warnings reach the user as one line on stderr each (``semsearch: ...``). Logging is imported
    here, not at the top: a query a watcher answers never needs it."""
    import logging

    from semsearch.output.terminal import stderr_console

    class NoticeHandler(logging.Handler):
        semsearch_notices = True

        def emit(self, record: logging.LogRecord) -> None:
            message = f"semsearch: {record.getMessage()}"
            stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)

    logger = logging.getLogger("semsearch")
    if not any(getattr(h, "semsearch_notices", False) for h in logger.handlers):
        logger.addHandler(NoticeHandler(logging.WARNING))
        logger.propagate = False


def report_error(error: SemsearchError) -> int:
    """Say what went wrong in one sentence on stderr; the exit status for it."""
    from semsearch.output.terminal import stderr_console
    from semsearch.pathtext import escape  # a file name in the message must not break the line or the terminal

    stderr_console().print(f"semsearch: {escape(str(error))}", markup=False, highlight=False, soft_wrap=True)
    return int(error.exit_code)


def report_interrupt() -> int:
    from semsearch.output.terminal import stderr_console

    stderr_console().print("semsearch: interrupted", markup=False)
    return int(ExitCode.INTERRUPTED)


def report_closed_pipe() -> int:
    """The reader went away (| head): stop quietly, as grep does."""
    quiet_stdout()
    return int(ExitCode.CLOSED_PIPE)


def run_reporting(body, *args, **kwargs) -> int:
    """Run ``body`` and turn a user-facing error, Ctrl-C or a closed pipe into its line and exit status."""
    try:
        return body(*args, **kwargs)
    except SemsearchError as e:
        return report_error(e)
    except KeyboardInterrupt:
        return report_interrupt()
    except BrokenPipeError:
        return report_closed_pipe()
