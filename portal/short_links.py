"""Short links for text messages (issue 29): `/a/<appointment id>` → the appointment's page.

A text has 160 characters; `/portal/appointments/<id>` under PUBLIC_URL spends too many. The
redirect reveals nothing: the page it leads to asks the patient to sign in and shows only their own.
"""

from flask import Blueprint, abort, redirect

from portal.schemas import OBJECT_ID

bp = Blueprint("short_links", __name__)


@bp.route("/a/<appointment_id>")
def appointment(appointment_id):
    """Redirect to the appointment's page in the portal."""
    import re

    if not re.fullmatch(OBJECT_ID, appointment_id):
        abort(404)
    return redirect(f"/portal/appointments/{appointment_id}", code=302)
