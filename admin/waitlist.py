"""The waitlist in the back office: read-only, for reception and admins (who is waiting, who was offered what)."""

from admin.base import SecureModelView, local_formatter
from admin.roles import FRONT_DESK, NOBODY


class WaitlistView(SecureModelView):
    """Patients waiting for a time, first in line first; offers and their expiry. Read-only: patients
    join and leave in the portal, and the sweep makes the offers."""

    read_roles = FRONT_DESK
    write_roles = NOBODY
    # Rows name the patient ("Name <email>"): every list and details read is audited.
    audit_reads = True
    can_view_details = True
    column_list = ("created_at", "patient", "service", "provider", "date_from", "date_to", "status",
                   "offer_expires_at", "note")
    column_labels = {"created_at": "In line since", "date_from": "From", "date_to": "To",
                     "provider": "Clinician", "offer_expires_at": "Offer holds until"}
    column_filters = ("status",)
    column_default_sort = ("created_at", False)
    column_formatters = {"created_at": local_formatter("created_at"),
                         "offer_expires_at": local_formatter("offer_expires_at")}


def add_waitlist_view(admin):
    """Register the waitlist view (Flask-Admin) under Appointments."""
    from models.booking.waitlist import WaitlistEntry

    admin.add_view(WaitlistView(WaitlistEntry, name="Waitlist", endpoint="waitlist"))
