"""The crash seam for the crash-consistency tests (issue 31): stop an action where a kill would."""

from datetime import timedelta

import pytest

from models import crashpoints
from models.clock import utcnow


class Crash(BaseException):
    """Stops an action where a kill would: no `except Exception` on the way catches it."""


@pytest.fixture
def crash_at():
    """`crash_at("cancel.released")`: the next action passing that point stops there."""
    def install(point):
        def hook(name):
            if name == point:
                raise Crash(name)
        crashpoints.set_hook(hook)
    yield install
    crashpoints.set_hook(None)


def repair(how, do_again):
    """Finish a cut-off action as a patient or the sweep would: `how` "retry" repeats the request
    (`do_again`, which must answer 200), "sweep" runs a sweep a minute later (which must recover it)."""
    from models.sweep import sweep

    if how == "retry":
        resp = do_again()
        assert resp.status_code == 200, resp.get_json()
    else:
        report = sweep(now=utcnow() + timedelta(minutes=1))
        assert report.recovered, report.lines()
