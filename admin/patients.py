"""The back office's Patients list and "Create patient" (issue 26 follow-up), by the front desk's rules.

The list lets staff tell patients apart as the desk's search does: date of birth, last and next
visit (`frontdesk.patient_cards`, one query for the page's rows), and never a placeholder address
(a desk caller's reads "no email", an erased patient's "Erased"). Creating a patient who looks like
a known one (same name and date of birth, same phone or same email: `frontdesk.possible_duplicates`,
the desk's own check) shows the form again with the matching records linked, until staff choose
"Create anyway".
"""

from zoneinfo import ZoneInfo

from flask import g, request

from admin.base import clinic_zone, staff_actor
from web.audit import audit
from models import formatting
from models.accounts.documents import deliverable
from models.booking.frontdesk import patient_cards, possible_duplicates
from models.clock import utcnow
from models.privacy import is_erased

CREATE_ANYWAY = "create_anyway"  # the second submit button's name on the create form


def email_words(patient):
    """What the email column shows: the address, "Erased" for an erased patient, else "no email"."""
    if deliverable(patient.email):
        return patient.email
    return "Erased" if is_erased(patient) else "no email"


def _visits(model):
    """The patient's desk card (last and next visit): the page's, loaded in bulk, or this one's (details)."""
    page = g.get("page_visits")
    if page is not None and model.id in page:
        return page[model.id]
    return patient_cards([model], utcnow())[0]


def birth_formatter(view, context, model, name):
    """A date of birth as the desk shows it ("02/03/1984"), or "not given"."""
    return formatting.numeric_date(model.date_of_birth) if model.date_of_birth else "not given"


def last_visit_formatter(view, context, model, name):
    """The last visit that took place, as a date in the clinic's zone ("25 Nov 2026"), or "none"."""
    last = _visits(model)["last"]
    return formatting.short_date(last, clinic_zone(), weekday=False, year=True) if last else "none"


def next_visit_formatter(view, context, model, name):
    """The next booked visit with its time and zone ("Tue 1 Dec 2026 10:00 GMT"), or "none booked"."""
    upcoming = _visits(model)["next"]
    return formatting.short_time(upcoming, clinic_zone()) if upcoming else "none booked"


class PatientListMixin:
    """The patients view's list columns loaded in bulk, and the duplicate warning on Create."""

    create_template = "admin_clinic/patient_create.html"

    def after_list_loaded(self, rows):
        """Last and next visits of the whole page in one query (the desk's `patient_cards`)."""
        rows = list(rows)
        g.page_visits = {card["patient"].id: card for card in patient_cards(rows, utcnow())}
        super().after_list_loaded(rows)

    def stopped_for_duplicates(self, form):
        """True when the new patient looks like a known one and staff have not chosen "Create anyway":
        the form is shown again with the matches (nothing is saved)."""
        if request.form.get(CREATE_ANYWAY) == "yes":
            return False
        found = possible_duplicates(form.name.data, form.phone.data, form.email.data, form.date_of_birth.data)
        if not found:
            return False
        # The matches are other patients' details on screen: a read of patient data, audited as a search.
        audit(staff_actor(), "Patient.search", record="Patient", outcome=f"duplicates:{len(found)}")
        g.patient_duplicates = patient_cards(found, utcnow())
        return True

    def render(self, template, **kwargs):
        """The create form carries the matches found (none until a create looked like a duplicate)."""
        if template == self.create_template:
            kwargs.update(duplicates=g.get("patient_duplicates") or [], zone=ZoneInfo(clinic_zone()),
                          create_anyway=CREATE_ANYWAY)
        return super().render(template, **kwargs)
