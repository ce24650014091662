"""In real Chromium: book a free service through /portal/book and see the confirmation."""

import re

from playwright.sync_api import expect

from tests.support.browser import portal_sign_in
from tests.support.factories import make_clinic, make_patient, make_provider, make_service


def test_book_a_free_service_and_see_the_confirmation(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    make_clinic()
    call = make_service("Follow-up call", duration=15, price=0, notice=60)
    make_service("Consultation", duration=30, price=5000)
    make_provider([call], name="Dr Amira Shah")
    make_patient()
    portal_sign_in(page, base)

    page.get_by_role("link", name="Book an appointment").click()
    page.get_by_role("link", name=re.compile(r"^Follow-up call 15 min · Free")).click()
    page.get_by_role("link", name="Dr Amira Shah").click()
    page.locator("table.cal td.free a").nth(1).click()
    expect(page.get_by_text("Europe/London").first).to_be_visible()

    # Each time is a link whose accessible name starts with its visible text, then the date and zone.
    first = page.get_by_role("link", name=re.compile(r"^\d\d:\d\d ?, \w+day \d+ \w+ (GMT|BST)$")).first
    label = first.inner_text().split("\n")[0].strip()
    first.click()
    expect(page.locator("#review").get_by_text("Free of charge")).to_be_visible()
    assert page.locator("#review").get_by_text("up to 2 hours before it starts").count() == 0  # the default 24 h
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/appointments/[0-9a-f]{{24}}$"))
    assert page.get_by_role("heading", name="Your appointment is confirmed").is_visible()
    assert page.locator("#when").get_by_text(label).count() == 1
    assert page.get_by_text("Free of charge").is_visible()
    assert page.get_by_role("link", name="Add to your calendar (.ics)").is_visible()

    # The booked time is gone from the list for the next visitor.
    page.go_back()
    page.go_back()
    page.reload()
    assert page.locator("a.time", has_text=re.compile("^" + label)).count() == 0
