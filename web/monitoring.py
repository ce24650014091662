"""Counting MongoDB commands per request with pymongo's command monitoring.

The listener is installed on the app's MongoDB client. With `COUNT_DB_COMMANDS` on, every
answer carries `X-DB-Commands`: the number of commands the request sent, which the tests and the
benchmark read to prove a page's cost does not grow with its data.
"""

import threading

from pymongo import monitoring

_local = threading.local()


class CommandCounter(monitoring.CommandListener):
    """Counts commands started on the current thread."""

    def started(self, event):
        _local.count = getattr(_local, "count", 0) + 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def reset():
    """Start counting from zero on this thread."""
    _local.count = 0


def count():
    """Commands started on this thread since the last reset."""
    return getattr(_local, "count", 0)


def init_app(app):
    """Add the `X-DB-Commands` header when the app is configured to count."""
    if not app.config.get("COUNT_DB_COMMANDS"):
        return

    @app.before_request
    def start_counting():
        reset()

    @app.after_request
    def report_count(response):
        response.headers["X-DB-Commands"] = str(count())
        return response
