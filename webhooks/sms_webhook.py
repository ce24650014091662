"""POST /webhooks/sms: replies to our texts from the SMS provider (issue 29), signature checked.

Twilio signs each request: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, the full URL the
provider called + every POST field's name and value, sorted by name)). We check it against the URL
under `PUBLIC_URL` (what the provider was given, also behind a proxy), in constant time; a missing
or forged signature answers 403 and changes nothing. The reply's first word decides: STOP (and
Twilio's other opt-out words) ends texts to that number, START / UNSTOP lets them go again
(`models.messages.sms`). Answers empty TwiML, so the provider sends no reply of its own.
"""

import base64
import hashlib
import hmac

from flask import Blueprint, Response, current_app, request

from models.errors import Forbidden
from models.messages.sms import auth_token, reply_received

bp = Blueprint("sms_webhook", __name__, url_prefix="/webhooks")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def twilio_signature(token, url, params):
    """The X-Twilio-Signature of a POST to `url` with form `params` (a dict of str → str)."""
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _called_url():
    base = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
    query = request.query_string.decode()
    return f"{base}{request.path}" + (f"?{query}" if query else "")


@bp.route("/sms", methods=["POST"])
def sms_reply():
    """A reply from a patient's phone: STOP ends texts to it, START lets them go again."""
    token = auth_token()
    given = request.headers.get("X-Twilio-Signature", "")
    params = {key: request.form.get(key, "") for key in request.form}
    if not token or not given or not hmac.compare_digest(twilio_signature(token, _called_url(), params), given):
        raise Forbidden("The signature of this request is missing or wrong.", code="bad_signature")
    reply_received(params.get("From", ""), params.get("Body", ""))
    return Response(EMPTY_TWIML, mimetype="text/xml")
