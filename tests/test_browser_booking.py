"""In real Chromium: book a free service through /portal/book and see the confirmation."""

import re

from tests.factories import PASSWORD, make_clinic, make_patient, make_provider, make_service




def sign_in(page, base):
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")


def test_book_a_free_service_and_see_the_confirmation(live_server, page):
    base, _app = live_server(COOKIE_SECURE=False)
    make_clinic()
    call = make_service("Follow-up call", duration=15, price=0, notice=60)
    make_service("Consultation", duration=30, price=5000)
    make_provider([call], name="Dr Amira Shah")
    make_patient()
    sign_in(page, base)

    page.get_by_role("link", name="Book an appointment").click()
    page.get_by_label("Service").select_option(label="Follow-up call (15 min, free)")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Provider").select_option(label="Any provider")
    page.get_by_role("button", name="Show free times").click()
    assert page.get_by_text("Europe/London").first.is_visible()

    # Each time is a button whose accessible name is the full date and time with the zone.
    first = page.get_by_role("button", name=re.compile(r"^Book \w+day \d+ \w+ \d{4}, \d\d:\d\d (GMT|BST) "
                                                        r"\(Europe.London\) with Dr Amira Shah$")).first
    label = first.get_attribute("aria-label")
    first.click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/appointments/[0-9a-f]{{24}}$"))
    assert page.get_by_role("heading", name="Your appointment is confirmed").is_visible()
    when = label.removeprefix("Book ").split(" (Europe/London)")[0]
    assert page.get_by_text(when).is_visible()
    assert page.get_by_text("Free of charge").is_visible()
    assert page.get_by_role("link", name="Add to your calendar (.ics)").is_visible()

    # The booked time is gone from the list for the next visitor.
    page.goto(f"{base}/portal/book?service={call.id}&provider=any")
    assert page.get_by_role("button", name=label).count() == 0
