"""GET /feeds/<token>.ics: a clinician's calendar feed for their calendar app (issue 29).

No sign-in (calendar apps cannot): the secret token is the key (`models.feeds`). Throttled with
the app's limiter per token and per address (calendar apps poll every 15–60 minutes; a
guesser gets 429), every read audited; an unknown or revoked token answers 404.
"""

import time

from flask import Blueprint, Response, current_app, request
from limits import parse

from web.extensions import get_limiter
from models.errors import Throttled
from models.feeds import _hash, feed_ics

bp = Blueprint("feeds", __name__, url_prefix="/feeds")

PER_TOKEN = parse("60 per hour")
PER_ADDRESS = parse("300 per hour")  # several clinicians behind one calendar service's address


def _throttle(token):
    strategy = get_limiter().limiter
    for limit, ids in ((PER_TOKEN, ("feed", "token", _hash(token)[:16])),
                       (PER_ADDRESS, ("feed", "address", request.remote_addr or "unknown"))):
        if not strategy.hit(limit, *ids):
            reset_at = strategy.get_window_stats(limit, *ids).reset_time
            raise Throttled(max(1, reset_at - time.time()), "Too many calendar requests; try again later.")


@bp.route("/<token>.ics")
def feed(token):
    """The clinician's appointments as iCalendar (404 for an unknown or revoked token)."""
    _throttle(token)
    body = feed_ics(token, public_url=current_app.config.get("PUBLIC_URL") or "")
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response.headers["Cache-Control"] = "no-store"
    return response
