"""An empty back-office list says what belongs there and what to do next (only offering "Create" to
a role that has it), and a search that finds nothing says so, instead of "There are no items in the
table." on every page."""

import html
import re

import pytest

from tests.support.factories import make_staff, staff_login

# A new clinic's empty lists: what each says, for a role offered Create and for one that is not.
EMPTY = {
    "/admin/providers/": ("No clinicians yet", "Add one with Create"),
    "/admin/services/": ("No services yet", "Add one with Create"),
    "/admin/schedules/": ("No weekly hours yet", "Set a clinician's hours with Create"),
    "/admin/time_off/": ("No time off booked", "Add a clinician's leave with Create"),
    "/admin/closures/": ("No closures", "Add a day the whole clinic is closed with Create"),
    "/admin/appointments/": ("No appointments yet", None),
    "/admin/patients/": ("No patients yet", "Add one with Create"),
    "/admin/waitlist/": ("No one is on the waitlist", None),
    "/admin/payments/": ("No payments yet", None),
    "/admin/stripe_events/": ("No Stripe events yet", None),
    "/admin/outbox/": ("No messages yet", None),
}


def empty_message(page):
    """The text of the list's empty row, or None when the list has rows."""
    found = re.search(r'<td colspan="999">\s*<div class="text-center">(.*?)</div>', page, re.S)
    return html.unescape(" ".join(found.group(1).split())) if found else None


@pytest.fixture
def signed_in(app):
    """A test client per role, signed in through the real form, on a clinic with nothing set up."""
    clients = {}
    for role in ("admin", "reception"):
        make_staff(role)
        clients[role] = app.test_client()
        assert staff_login(clients[role], f"{role}@clinic.test").status_code == 302
    return clients


def test_each_empty_list_says_what_belongs_there_and_what_to_do(signed_in):
    for url, (says, create_hint) in EMPTY.items():
        page = signed_in["admin"].get(url)
        assert page.status_code == 200, url
        message = empty_message(page.get_data(as_text=True))
        assert message and message.startswith(says), (url, message)
        assert "no items" not in message
        if create_hint:
            assert create_hint in message, (url, message)
        else:
            assert "Create" not in message, (url, message)


def test_create_is_offered_only_to_a_role_that_has_it(signed_in):
    reception = empty_message(signed_in["reception"].get("/admin/services/").get_data(as_text=True))
    assert reception.startswith("No services yet") and "Create" not in reception, reception
    patients = empty_message(signed_in["reception"].get("/admin/patients/").get_data(as_text=True))
    assert "Add one with Create" in patients, patients  # reception may add a patient


def test_a_search_that_finds_nothing_says_so(signed_in):
    page = signed_in["admin"].get("/admin/staff/?search=nobody-by-this-name").get_data(as_text=True)
    assert empty_message(page) == "Nothing matches this search or filter. Clear it to see everything."
    assert empty_message(signed_in["admin"].get("/admin/staff/").get_data(as_text=True)) is None
