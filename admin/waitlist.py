"""The waitlist in the back office: read-only, for reception and admins (who is waiting, who was offered what)."""

from admin.base import SecureModelView, clinic_zone, local_formatter
from admin.roles import FRONT_DESK, NOBODY
from models.formatting import human_time, short_time


def _status(view, context, model, name):
    """The entry's state in words for staff: a patient who left reads "Left on …", not "expired"."""
    if model.left_at:
        return f"Left on {human_time(model.left_at, clinic_zone())}"
    return {"waiting": "Waiting", "offered": "Offered a time", "booked": "Booked",
            "expired": "Ended"}.get(model.status, model.status)


def _offer_until(view, context, model, name):
    """When an open offer lapses; nothing once the patient left (the offer was given back)."""
    if model.left_at or model.status != "offered" or not model.offer_expires_at:
        return ""
    return human_time(model.offer_expires_at, clinic_zone())


def _note(view, context, model, name):
    """The entry's note, written for staff where the stored one speaks to the patient."""
    return "The patient left the waitlist." if model.left_at else (model.note or "")


class WaitlistView(SecureModelView):
    """Patients waiting for a time, first in line first; offers and their expiry. Read-only: patients
    join and leave in the portal, and the sweep makes the offers."""

    read_roles = FRONT_DESK
    write_roles = NOBODY
    empty_list_message = ("No one is on the waitlist. Patients join it from the booking page when no time "
                          "suits them.")
    # Rows name the patient ("Name <email>"): every list and details read is audited.
    audit_reads = True
    can_view_details = True
    column_list = ("created_at", "patient", "service", "provider", "date_from", "date_to", "status",
                   "offer_expires_at", "note")
    column_details_list = ("patient", "service", "provider", "date_from", "date_to", "status", "created_at",
                           "updated_at", "offer_expires_at", "declined", "note")
    column_labels = {"created_at": "In line since", "date_from": "From", "date_to": "To",
                     "provider": "Clinician", "offer_expires_at": "Offer holds until", "updated_at": "Last changed",
                     "declined": "Times declined before"}
    column_filters = ("status",)
    column_default_sort = ("created_at", False)
    column_formatters = {"created_at": local_formatter("created_at"), "status": _status,
                         "offer_expires_at": _offer_until, "note": _note,
                         "provider": lambda v, c, m, n: m.provider.name if m.provider else "Any clinician",
                         "declined": lambda v, c, m, n: "; ".join(
                             short_time(at, clinic_zone()) for at in (m.declined or [])) or "None"}


def add_waitlist_view(admin):
    """Register the waitlist view (Flask-Admin) under Appointments."""
    from models.booking.waitlist import WaitlistEntry

    admin.add_view(WaitlistView(WaitlistEntry, name="Waitlist", endpoint="waitlist"))
