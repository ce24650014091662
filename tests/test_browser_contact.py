"""In real Chromium on a 390 px phone (issues 29 and 25, follow-ups): a patient refuses-then-saves a
mobile number and "Text message" on the account page, books, reads on the confirmation that it
went by text, and the SMS stand-in keeps the text; the empty waitlist and family pages show their
designed empty states. axe-core on each page."""

import random
import re
from datetime import timezone

from playwright.sync_api import expect

from models.documents import Patient
from models.formatting import phone as say_phone
from models.messages.sms import deliver_sms_due
from tests.support.browser import portal_sign_in
from tests.support.factories import at, future_day
from tests.test_browser_frontdesk import assert_accessible


def test_a_patient_chooses_texts_on_a_phone_and_the_confirmation_is_texted(live_server, clinic_world, page,
                                                                           sms_standin):
    base, app = live_server(COOKIE_SECURE=False, SMS_URL=sms_standin.url, SMS_FROM="+447700900000")
    world = clinic_world(services={"call": dict(name="Phone call", price=0)},
                         providers={"dr": dict(name="Dr Call", services=["call"])}, patients=["pat@example.com"])
    number = f"+4477009{random.randint(0, 99999):05d}"
    local = say_phone(number, "GB")
    page.set_viewport_size({"width": 390, "height": 844})
    portal_sign_in(page, base)
    # Empty pages say what they are for and offer the next step.
    page.goto(f"{base}/portal/waitlist")
    expect(page.locator("#entries-empty")).to_contain_text("You are not on any waitlist.")
    expect(page.locator("#entries-empty").get_by_role("link", name="Join a waitlist")).to_be_visible()
    assert_accessible(page, "empty waitlist")
    page.goto(f"{base}/portal/family")
    expect(page.locator("#people-empty")).to_contain_text("Nobody yet.")
    expect(page.locator("#people-empty").get_by_role("link", name="Add a person")).to_be_visible()
    assert_accessible(page, "empty family page")

    page.goto(f"{base}/portal/account")
    expect(page.get_by_label("Email", exact=True)).to_be_checked()
    page.get_by_label("Mobile phone").fill("12ab")
    page.get_by_label("Text message").check()
    page.get_by_role("button", name="Save how we contact you").click()
    expect(page.locator("#contact-phone-error")).to_contain_text("Enter a phone number we can call or text")
    assert_accessible(page, "account page with a refused phone")
    stored = Patient.objects.get(email="pat@example.com")
    assert stored.phone == "" and not stored.contact_by  # nothing saved
    page.get_by_label("Mobile phone").fill(local)
    page.get_by_label("Text message").check()
    page.get_by_role("button", name="Save how we contact you").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved: we will text you at {local}.")
    expect(page.get_by_label("Text message")).to_be_checked()
    assert_accessible(page, "account page, saved")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    start = at(future_day(3), 10)  # its 24 h reminder falls after the texts are sent below
    page.goto(f"{base}/portal/book?service={world['call'].id}&provider=any&day={future_day(3)}&start="
              + start.isoformat().replace("+", "%2B") + "#review")
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    expect(page.locator("#confirmation-sent")).to_have_text(f"We have sent your confirmation by text to {local}.")
    assert_accessible(page, "confirmation sent by text")
    with app.app_context():  # midday, so quiet hours never hold it back
        deliver_sms_due(at(future_day(1), 12).astimezone(timezone.utc))
    texts = sms_standin.messages(to=number)
    assert len(texts) == 1 and "booked" in texts[0]["body"], texts
