"""In real Chromium (issue 25): the front door is the booking page without signing in, the held page
counts down, the confirmation offers the map and calendar links, the back office's clinic pages; each
with no serious or critical axe violation and, at 390 px, no sideways scroll."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from models import Patient, Provider, Service
from models.booking.create import book
from models.catalog.documents import Clinic, Closure
from models.seed import DEMO_PASSWORD, seed_demo
from tests.a11y import axe_violations
from tests.support.factories import at, future_day

PHONE = {"width": 390, "height": 844}


def sideways(page):
    """How many pixels the page scrolls sideways (0 when it fits)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def weekday_ahead(days):
    day = future_day(days)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


@pytest.mark.slow
def test_patient_pages_of_the_front_door_read_well_on_a_phone(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    patient = Patient.objects.get(email="patient@clinic.test")
    consult = Service.objects.get(name="General consultation")
    call = Service.objects.get(name="Follow-up call")
    amira = Provider.objects.get(email="amira.shah@clinic.test")
    day = weekday_ahead(6)
    now = datetime.now(timezone.utc)
    held = book(patient, str(consult.id), str(amira.id), at(day, 10), now)
    free = book(patient, str(call.id), str(amira.id), at(day, 15), now)
    Closure(start=at(day + timedelta(days=1), 0), end=at(day + timedelta(days=2), 0), reason="Staff training").save()
    page.set_viewport_size(PHONE)
    problems = {}

    page.goto(f"{base}/")
    assert page.title() == "Book an appointment · Riverside Clinic"
    assert page.locator("header").get_by_text("Riverside Clinic").is_visible()
    assert page.locator("#welcome").get_by_text("12 River Street").is_visible()
    assert page.locator("#closures").get_by_text("Staff training").is_visible()
    assert page.locator("footer").get_by_text("020 7946 0123").is_visible()
    problems["/"] = axe_violations(page) + ([f"scrolls {sideways(page)} px"] if sideways(page) > 0 else [])

    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("patient@clinic.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
    assert page.locator(".badge", has_text="Awaiting payment").count() == 1
    problems["dashboard"] = axe_violations(page) + ([f"scrolls {sideways(page)} px"] if sideways(page) > 0 else [])

    page.goto(f"{base}/portal/appointments/{held.id}")
    countdown = page.locator(".countdown")
    countdown.wait_for()
    assert re.search(r"\(\d+:\d\d left\)", countdown.inner_text())
    assert page.locator("#status").inner_text() == "Awaiting payment"
    problems["held"] = axe_violations(page) + ([f"scrolls {sideways(page)} px"] if sideways(page) > 0 else [])

    page.goto(f"{base}/portal/appointments/{free.id}")
    assert page.locator("#confirmation-sent").inner_text() == "We have emailed your confirmation to patient@clinic.test."
    assert "openstreetmap.org/search?query=12%20River%20Street" in page.get_by_role(
        "link", name=re.compile("Map on OpenStreetMap")).get_attribute("href")
    assert page.get_by_role("link", name="Google Calendar").get_attribute("href").startswith(
        "https://calendar.google.com/calendar/render?action=TEMPLATE")
    assert page.get_by_role("link", name="Outlook.com").get_attribute("href").startswith("https://outlook.live.com/")
    assert page.get_by_role("link", name="Add to your calendar (.ics)").is_visible()
    problems["confirmed"] = axe_violations(page) + ([f"scrolls {sideways(page)} px"] if sideways(page) > 0 else [])
    assert not {k: v for k, v in problems.items() if v}, problems


def test_the_held_page_without_javascript_shows_when_the_hold_ends(live_server, browser):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    patient = Patient.objects.get(email="patient@clinic.test")
    consult = Service.objects.get(name="General consultation")
    amira = Provider.objects.get(email="amira.shah@clinic.test")
    held = book(patient, str(consult.id), str(amira.id), at(weekday_ahead(6), 11), datetime.now(timezone.utc))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{base}/portal/login")
        page.get_by_label("Email").fill("patient@clinic.test")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/portal/")
        page.goto(f"{base}/portal/appointments/{held.id}")
        note = page.locator("#hold-note").inner_text()
        assert "We are holding this time for you until" in note and re.search(r"\d\d:\d\d (GMT|BST)", note)
        assert not page.locator(".countdown").is_visible()
    finally:
        context.close()


@pytest.mark.slow
def test_back_office_clinic_pages_pass_axe_and_show_the_clinic(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    seed_demo()
    clinic = Clinic.get()
    Closure(start=at(future_day(3), 9), end=at(future_day(3), 12), reason="Staff training").save()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("admin@clinic.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/") + r"$"))
    assert page.title().endswith("Riverside Clinic back office")
    assert page.locator(".navbar-brand").inner_text().startswith("Riverside Clinic")
    # The menu fits on one row at 1280 px: every top-level item shares one top edge.
    tops = page.evaluate("() => [...document.querySelectorAll('#admin-navbar-collapse > ul.mr-auto > li')]"
                         ".map(li => Math.round(li.getBoundingClientRect().top))")
    assert len(set(tops)) == 1, tops
    # …and nothing in the header reaches past the page's right edge.
    assert page.evaluate("() => Math.max(...[...document.querySelectorAll('header nav *')]"
                         ".map(e => e.getBoundingClientRect().right))") <= 1280
    problems = {}
    for path in ("/admin/", f"/admin/clinic/edit/?id={clinic.id}", "/admin/closures/", "/admin/closures/new/",
                 "/admin/holidays/"):
        assert page.goto(base + path).status == 200, path
        found = axe_violations(page)
        if found:
            problems[path] = found
    assert not problems, problems
    # The admin changes one setting of the demo clinic and saves the form as it stands: it saves
    # (the demo's own email address once made the whole form refuse to save).
    page.goto(f"{base}/admin/clinic/edit/?id={clinic.id}")
    page.get_by_label("Cancellation window (hours)").fill("48")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert").first).to_contain_text("Clinic Riverside Clinic saved.")
    assert Clinic.get().default_cancellation_hours == 48 and Clinic.get().email == "hello@riverside-clinic.test"
