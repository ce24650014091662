"""GET /feeds/<token>.ics: a clinician's calendar feed for their calendar app (issue 29).

No sign-in (calendar apps cannot): the secret token is the key (`models.feeds`). Throttled through
`models.ratelimits` per token and per address (calendar apps poll every 15–60 minutes; a
guesser gets 429), every read audited; an unknown or revoked token answers 404.
"""

from flask import Blueprint, Response, current_app, request

from models import ratelimits
from models.feeds import _hash, feed_ics
from models.ratelimits import Limit

bp = Blueprint("feeds", __name__, url_prefix="/feeds")

FEED_LIMIT_MESSAGE = "Too many calendar requests; try again later."
PER_TOKEN = Limit("feed", 60, 3600, FEED_LIMIT_MESSAGE)
PER_ADDRESS = Limit("feed", 300, 3600, FEED_LIMIT_MESSAGE)  # several clinicians behind one calendar service's address


def _throttle(token):
    ratelimits.hit(PER_TOKEN, "token", _hash(token)[:16])
    ratelimits.hit(PER_ADDRESS, "address", request.remote_addr or "unknown")


@bp.route("/<token>.ics")
def feed(token):
    """The clinician's appointments as iCalendar (404 for an unknown or revoked token)."""
    _throttle(token)
    body = feed_ics(token, public_url=current_app.config.get("PUBLIC_URL") or "")
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response.headers["Cache-Control"] = "no-store"
    return response
