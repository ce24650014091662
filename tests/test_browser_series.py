"""In real Chromium at 390 px: a patient books a course of visits from the review step, accepts the
nearest free time for a date that is taken, sees every visit, then cancels "this and the later visits"."""

import re
from datetime import timedelta, timezone

from playwright.sync_api import expect

from models import Appointment, Service
from models.booking.create import book
from models.documents import utcnow
from tests.a11y import axe_violations
from tests.support.browser import enter_card, portal_sign_in
from tests.support.factories import at, future_day

PHONE = {"width": 390, "height": 844}


def fits_the_phone(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scroll: {width}"


def test_a_patient_books_a_series_on_a_phone_choosing_another_time_for_a_taken_date(live_server, clinic_world, browser):
    base, _app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
                         providers={"jo": dict(name="Jo Park")},
                         patients=["pat@example.com", "other@example.com"])
    Service.objects(id=world["physio"].id).update_one(set__repeat_allowed=True)
    day = future_day(2)
    first = at(day, 10)
    taken = first + timedelta(weeks=2)
    book(world.patients["other@example.com"], str(world["physio"].id), str(world["jo"].id), taken, utcnow())
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        portal_sign_in(page, base)
        page.goto(f"{base}/portal/book?service={world['physio'].id}&provider={world['jo'].id}"
                  f"&day={day.isoformat()}&start={first.isoformat().replace('+', '%2B')}")
        review = page.locator("#review")
        assert review.get_by_role("group", name="Repeat this visit").is_visible()
        page.get_by_label("How often").select_option(label="Every week")
        page.get_by_label("Number of visits, this one included").select_option(label="4 visits")
        fits_the_phone(page)
        assert axe_violations(page) == []
        # The button names the course, not one visit: each of the 4 is paid on its own.
        page.get_by_role("button", name="Hold these 4 visits and pay £60.00 for each", exact=True).click()

        # The third date is taken: nothing is booked yet, and the nearest free times are offered.
        expect(page.get_by_role("heading", name="Some dates of your series are not free")).to_be_visible()
        assert page.get_by_role("alert").get_by_text("Nothing was booked yet.").is_visible()
        group = page.get_by_role("group", name=re.compile("^Instead of "))
        assert group.count() == 1 and re.search(r"10:00 (GMT|BST)", group.locator("legend").inner_text())
        assert group.get_by_role("radio").first.is_checked()
        chosen = group.locator("label").first.inner_text()
        assert Appointment.objects(patient=world.patients["pat@example.com"].id).count() == 0
        fits_the_phone(page)
        assert axe_violations(page) == []
        page.get_by_role("button", name="Book all 4 visits").click()

        page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/series/[0-9a-f]{{24}}$"))
        assert page.get_by_role("heading", name="Your 4 visits for Physiotherapy").is_visible()
        assert page.get_by_text("Your 4 visits are booked. Pay for each visit to confirm it.").is_visible()
        items = page.locator("#visits li")
        assert items.count() == 4 and items.nth(2).get_by_role("link", name=chosen, exact=True).is_visible()
        assert all("Awaiting payment" in items.nth(i).inner_text() for i in range(4))
        fits_the_phone(page)
        assert axe_violations(page) == []

        # Cancel the second visit and the ones after it.
        items.nth(1).get_by_role("link").first.click()
        page.get_by_role("link", name="Cancel this appointment").click()
        page.get_by_role("button", name="Cancel this and the 2 later visits").click()
        expect(page.get_by_text("3 visits are cancelled: this one and the later ones.")).to_be_visible()
        page.get_by_role("link", name="See every visit of this series").click()
        statuses = [items.nth(i).locator(".badge").inner_text() for i in range(4)]
        assert statuses == ["Awaiting payment"] + ["Cancelled by you"] * 3
        fits_the_phone(page)
    finally:
        context.close()
    kept = Appointment.objects(patient=world.patients["pat@example.com"].id, status="held").get()
    assert kept.start.replace(tzinfo=timezone.utc) == first.astimezone(timezone.utc)


def test_a_patient_pays_for_a_whole_course_on_a_phone_from_the_review_step(live_server, clinic_world, browser):
    """Issue 28: "Pay £180.00 now for all 3 visits" on the review step, one card payment, every visit confirmed."""
    base, _app = live_server(COOKIE_SECURE=False)
    world = clinic_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
                         providers={"jo": dict(name="Jo Park")}, patients=["pat@example.com"])
    Service.objects(id=world["physio"].id).update_one(set__repeat_allowed=True)
    day = future_day(2)
    first = at(day, 10)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        portal_sign_in(page, base)
        page.goto(f"{base}/portal/book?service={world['physio'].id}&provider={world['jo'].id}"
                  f"&day={day.isoformat()}&start={first.isoformat().replace('+', '%2B')}")
        page.get_by_label("How often").select_option(label="Every week")
        page.get_by_label("Number of visits, this one included").select_option(label="3 visits")
        choice = page.get_by_role("group", name="Paying for the course")
        assert choice.get_by_label("Pay for each visit on its own (£60.00 a visit)").is_checked()
        choice.get_by_label("Pay £180.00 now for all 3 visits").check()  # follows the number chosen
        fits_the_phone(page)
        assert axe_violations(page) == []
        # The button says what is paid now: the whole course, not one visit's price.
        page.get_by_role("button", name="Hold these 3 visits and pay £180.00", exact=True).click()

        page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/series/[0-9a-f]{{24}}$"))
        assert page.get_by_text("Your 3 visits are booked. Pay for the whole course to confirm them.").is_visible()
        fits_the_phone(page)
        assert axe_violations(page) == []
        page.get_by_role("link", name="Pay £180.00 now for all 3 visits").click()

        expect(page.get_by_role("heading", name="Pay £180.00 to confirm all 3 visits")).to_be_visible()
        assert page.get_by_text("To be paid with the whole course").is_visible()
        fits_the_phone(page)
        assert axe_violations(page) == []
        enter_card(page, "4242424242424242", submit=True)
        page.get_by_role("heading", name="Your 3 visits are confirmed").wait_for()
        assert page.get_by_text("Paid as part of a course").is_visible()
        assert page.get_by_text("Visit 1 of 3").is_visible() and page.locator("#confirmation-sent").is_visible()

        page.get_by_role("link", name="See every visit of this series").click()
        items = page.locator("#visits li")
        assert [items.nth(i).locator(".badge").inner_text() for i in range(3)] == ["Confirmed"] * 3
        assert page.get_by_text("Paid as part of a course: one payment for every visit.").is_visible()
        assert not page.get_by_role("link", name=re.compile("^Pay ")).count()
    finally:
        context.close()
    visits = Appointment.objects(patient=world.patients["pat@example.com"].id)
    assert sorted(v.status for v in visits) == ["confirmed"] * 3
