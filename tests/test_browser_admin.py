"""In real Chromium: reception signs in, opens the day view, books a patient, and checks them in."""

import re

from playwright.sync_api import expect

from models import Appointment
from tests.support.factories import PASSWORD, daytime_zone, make_clinic, make_patient, make_provider, make_service, make_staff




def test_reception_books_and_checks_in_from_the_day_view(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    make_clinic(tz=daytime_zone())  # a free time is left today whatever the hour the suite runs
    call = make_service("Call", duration=15, price=0, notice=0)
    make_provider([call], name="Dr Day", hours=("00:00", "23:45"), lunch=None)
    make_staff("reception")
    patient = make_patient()

    page.goto(f"{base}/admin/")
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login")))
    page.get_by_label("Email").fill("reception@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")

    page.get_by_role("link", name="Day view", exact=True).first.click()
    page.get_by_role("link", name="Book", exact=True).click()
    page.get_by_label("Find a patient").fill("pat@example.com")
    page.get_by_role("button", name="Find").click()
    page.get_by_label("Service").select_option(label="Call (15 min, free)")
    page.get_by_label("Provider").select_option(label="Dr Day")
    page.get_by_role("button", name="Show free times").click()
    page.get_by_role("button", name="Book at ").first.click()  # a free time opens the review (issue 26)
    page.get_by_role("heading", name="Book this appointment?").wait_for()
    page.get_by_role("button", name="Book", exact=True).click()
    page.get_by_text("Booked Pat Example").wait_for()  # the click navigates: wait for the new page
    appt = Appointment.objects.get(patient=patient.id)
    assert appt.status == "confirmed"

    page.locator(f"#appt-{appt.id} summary").click()
    page.get_by_role("button", name="Check in Pat Example").click()
    expect(page.get_by_text("Checked in Pat Example")).to_be_visible()
    assert page.locator(f"[data-appointment='{appt.id}'] .status").inner_text() == "Checked in"
    assert Appointment.objects.get(id=appt.id).status == "checked_in"

    # The appointments list and its action menu work under the page's CSP.
    page.get_by_role("link", name="Appointments").click()
    page.wait_for_url(f"{base}/admin/appointments/")
    # The menu's handlers are attached by scripts at the end of the page: wait for them.
    page.wait_for_load_state("load")
    page.get_by_role("button", name="With selected").click()
    page.get_by_text("Mark as no-show").wait_for(state="visible", timeout=5000)
