"""Back-office QA findings: the provider role sees no money, a walk-in stays a walk-in through
"Find", the sign-in and error pages wear the back office's frame, one home for the role tables."""

import ast
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, StaffUser
from tests.support.factories import (
    LONDON,
    make_clinic,
    make_patient,
    make_provider,
    make_service,
    make_staff,
    staff_login,
)
from tests.helpers import ROOT


@pytest.fixture
def clinic_day(app):
    make_clinic()
    consult = make_service("Consultation", duration=30, price=6000, notice=0)
    one = make_provider([consult], name="Dr One", hours=("00:00", "23:55"), lunch=None)
    for role in ("admin", "reception"):
        make_staff(role)
    provider_staff = make_staff("provider")
    StaffUser.objects(id=provider_staff.id).update_one(set__provider=one)
    patient = make_patient()
    # Today at noon (London), unpaid: 60.00 due at the desk.
    now = datetime.now(timezone.utc).astimezone(LONDON)
    start = now.replace(hour=12, minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=30)
    appt = Appointment(patient=patient, provider=one, service=consult, start=start, end=end, block_start=start,
                       block_end=end, status="confirmed", amount=6000, currency="gbp",
                       booked_by="staff:test").save()
    return {"appointment": appt, "day": start.date().isoformat(), "one": one}


def signed_in(app, role):
    client = app.test_client()
    assert staff_login(client, f"{role}@clinic.test").status_code == 302
    return client


def test_the_provider_role_sees_no_money_in_the_day_view(app, clinic_day):
    day = clinic_day["day"]
    desk = signed_in(app, "reception").get(f"/admin/day/?day={day}").get_data(as_text=True)
    assert "60.00" in desk and "due" in desk  # the front desk sees what to take
    provider = signed_in(app, "provider")
    page = provider.get(f"/admin/day/?day={day}").get_data(as_text=True)
    assert f'id="appt-{clinic_day["appointment"].id}"' in page  # the appointment is there...
    assert "60.00" not in page and "to pay at the desk" not in page  # ...its money is not
    sheet = provider.get(f"/admin/day/print?day={day}").get_data(as_text=True)
    assert "Pat Example" in sheet and "60.00" not in sheet and ">Due<" not in sheet


def test_the_provider_role_sees_no_money_in_the_appointments_list(app, clinic_day):
    desk = signed_in(app, "reception")
    listing = desk.get("/admin/appointments/").get_data(as_text=True)
    assert "60.00" in listing and ">Amount<" in listing
    provider = signed_in(app, "provider")
    listing = provider.get("/admin/appointments/").get_data(as_text=True)
    assert "Pat Example" in listing
    assert "60.00" not in listing and ">Amount<" not in listing and ">Payment<" not in listing
    details = provider.get(f"/admin/appointments/details/?id={clinic_day['appointment'].id}").get_data(as_text=True)
    assert "Pat Example" in details and "60.00" not in details
    # Sorting by the last column shown sorts by it (Override), not by a hidden money column.
    headers = re.findall(r'<th class="column-header col-(\w+)', listing)
    assert headers[-1] == "override"
    assert provider.get(f"/admin/appointments/?sort={len(headers) - 1}").status_code == 200


def test_a_walk_in_stays_a_walk_in_after_find(app, clinic_day):
    client = signed_in(app, "reception")
    page = client.get("/admin/day/new?walkin=1").get_data(as_text=True)
    assert "Walk-in: book now" in page
    search = page[page.index('role="search"'):]
    search = search[:search.index("</form>")]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', search))
    assert hidden.get("walkin_done") == "1"
    found = client.get("/admin/day/new", query_string=dict(hidden, q="Pat")).get_data(as_text=True)
    assert "Walk-in: book now" in found and "Pat Example" in found
    assert f'value="{hidden["time"]}"' in found  # the walk-in's time is kept, not reset


def test_staff_sign_in_and_the_403_page_wear_the_back_office_frame(app, clinic_day):
    client = app.test_client()
    login = client.get("/admin/login").get_data(as_text=True)
    assert 'aria-label="Back office"' in login and "admin_clinic.css" in login
    assert "clinic.css\"" not in login.replace("admin_clinic.css", "") and "Your dashboard" not in login
    provider = signed_in(app, "provider")
    refused = provider.get("/admin/patients/", headers={"Accept": "text/html"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert 'aria-label="Back office"' in html and "admin_clinic.css" in html and "Your dashboard" not in html
    assert "Signed in as" in html and "/admin/" in html


def test_the_portal_keeps_its_own_error_frame(app):
    page = app.test_client().get("/portal/no-such-page", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Your dashboard" in page and 'aria-label="Back office"' not in page


def test_role_tables_are_defined_only_in_admin_roles():
    """No module of admin/ but roles.py writes a tuple of role names."""
    roles = {"admin", "reception", "provider"}
    offenders = []
    for name in sorted(os.listdir(os.path.join(ROOT, "admin"))):
        if not name.endswith(".py") or name == "roles.py":
            continue
        tree = ast.parse(open(os.path.join(ROOT, "admin", name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple) and node.elts and all(
                    isinstance(e, ast.Constant) and e.value in roles for e in node.elts):
                offenders.append(f"admin/{name}:{node.lineno}")
    assert not offenders, offenders
