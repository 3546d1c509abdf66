"""The project's own errors: ``run_cli`` prints them as one ``error:`` line, without a traceback."""


class WKDError(RuntimeError):
    """A problem this project detected and can explain in one line (an inconsistent or unsafe
    checkpoint, a busy output folder, a full disk, no usable batch...). Library errors are left
    alone, so their tracebacks still show."""
