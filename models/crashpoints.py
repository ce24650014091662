"""A fault-injection seam for the crash-consistency tests (issue 31).

Each multi-write action calls `reached("<action>.<step>")` between two of its writes. In production
no hook is set and the call does nothing; a test sets one (`set_hook`) that raises, and so stops the
action there as a killed process would, then shows that the sweep (or a repeated request) repairs it.
"""

_hook = None


def reached(name):
    """Mark that an action passed the point `name` (between two writes); a test's hook may stop it here."""
    if _hook is not None:
        _hook(name)


def set_hook(hook):
    """Install `hook(name)` (None removes it); returns the hook it replaced."""
    global _hook
    previous, _hook = _hook, hook
    return previous
