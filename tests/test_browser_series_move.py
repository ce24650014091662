"""Issue 28 in real Chromium: moving "this visit and the later ones" of a series and booking a series
when one date is taken. A patient on a 390 px phone (portal), reception at 1280 px (day view): each
time a date is not free, the page names it with its nearest free times, one is picked, and the whole
set moves or is booked. Every page on the way is checked with axe-core."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from models import Appointment, Service
from models.booking.create import book as book_visit
from models.documents import utcnow
from tests.a11y import axe_violations
from tests.helpers import save_screenshot
from tests.support.browser import portal_sign_in
from tests.support.factories import PASSWORD, at, future_day

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
ZONED = r"\d{2}:\d{2} (GMT|BST)"


def fits(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scroll: {width}"


@pytest.fixture
def world(live_server, clinic_world):
    base, _app = live_server(COOKIE_SECURE=False)
    made = clinic_world(services={"physio": dict(name="Physiotherapy", duration=45, price=6000)},
                        providers={"jo": dict(name="Jo Park")}, staff=("reception",),
                        patients=["pat@example.com", "other@example.com"])
    Service.objects(id=made["physio"].id).update_one(set__repeat_allowed=True)
    made.base = base
    return made


def book(world, email, start, repeat=None):
    """Book through the domain action, as the portal would (a series when `repeat` is (every, count))."""
    patient = world.patients[email]
    if repeat:
        from models.booking import series
        return series.book_series(patient, str(world["physio"].id), str(world["jo"].id), start, utcnow(), *repeat)[1]
    return [book_visit(patient, str(world["physio"].id), str(world["jo"].id), start, utcnow())]


def staff_page(browser, base):
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill("reception@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")
    return context, page


def starts(ids):
    return [Appointment.objects.get(id=i).start.replace(tzinfo=timezone.utc) for i in ids]


def test_a_patient_moves_this_and_the_later_visits_on_a_phone_choosing_for_a_taken_date(world, browser):
    base, day = world.base, future_day(2)
    ids = [v.id for v in book(world, "pat@example.com", at(day, 10), (1, 3))]
    taken = at(day + timedelta(weeks=2), 15)  # where the third visit would go
    book(world, "other@example.com", taken)
    new = at(day + timedelta(weeks=1), 15)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        portal_sign_in(page, base)
        page.goto(f"{base}/portal/appointments/{ids[1]}/reschedule?start={new.isoformat().replace('+', '%2B')}")
        review = page.locator("#review")
        assert review.get_by_role("heading", name="Move to this time?").is_visible()
        assert re.search(ZONED, review.locator("dd").first.inner_text())
        scope = review.get_by_role("group", name="Which visits")
        assert scope.get_by_label("Only this visit").is_checked()  # the default moves one visit only
        scope.get_by_label("This visit and the 1 later visit of the series").check()
        fits(page)
        assert axe_violations(page) == []
        save_screenshot(page, "series-move-review-phone.png")
        page.get_by_role("button", name="Move my appointment").click()

        # The third date is taken: nothing moved, the date named with its nearest free times.
        expect(page.get_by_role("heading", level=1, name="Some dates of your series are not free")).to_be_visible()
        assert page.get_by_role("alert").get_by_text(re.compile("^Nothing was moved yet")).is_visible()
        group = page.get_by_role("group", name=re.compile("^Instead of "))
        assert group.count() == 1 and re.search(ZONED, group.locator("legend").inner_text())
        radios = group.get_by_role("radio")
        assert radios.count() >= 2 and radios.first.is_checked()
        assert all(re.search(ZONED, group.locator("label").nth(i).inner_text()) for i in range(radios.count()))
        assert starts(ids)[1:] == [at(day + timedelta(weeks=n), 10).astimezone(timezone.utc) for n in (1, 2)]
        fits(page)
        assert axe_violations(page) == []
        save_screenshot(page, "series-move-conflict-phone.png")
        group.locator("label").nth(1).click()  # the second nearest: the patient's own choice
        chosen_text = group.locator("label").nth(1).inner_text()
        chosen = radios.nth(1).get_attribute("value")
        page.get_by_role("button", name="Move all the visits").click()

        page.wait_for_url(re.compile(rf"{re.escape(base)}/portal/series/[0-9a-f]{{24}}$"))
        assert page.get_by_role("heading", name="Your 3 visits for Physiotherapy").is_visible()
        message = page.get_by_text(re.compile("^Your appointment is moved to"))
        assert message.is_visible() and "and the 1 later visit of the series with it" in message.inner_text()
        assert re.search(ZONED, message.inner_text())
        items = page.locator("#visits li")
        assert items.nth(2).get_by_role("link", name=chosen_text, exact=True).is_visible()
        fits(page)
        assert axe_violations(page) == []
        save_screenshot(page, "series-moved-phone.png")
    finally:
        context.close()
    assert starts(ids) == [at(day, 10).astimezone(timezone.utc), new.astimezone(timezone.utc),
                           datetime.fromisoformat(chosen).astimezone(timezone.utc)]


def test_reception_books_a_series_from_the_day_view_choosing_for_a_taken_date(world, browser):
    base, day = world.base, future_day(2)
    taken = at(day + timedelta(weeks=1), 10)
    book(world, "other@example.com", taken)
    patient = world.patients["pat@example.com"]
    context, page = staff_page(browser, base)
    try:
        page.goto(f"{base}/admin/day/?day={day.isoformat()}")
        page.get_by_role("link", name="Book", exact=True).click()
        page.get_by_label("Find a patient").fill(patient.name)
        page.get_by_role("button", name="Find", exact=True).click()
        page.get_by_label(re.compile(r"· pat@example\.com ·")).check()
        page.get_by_label("Provider").select_option(label="Jo Park")
        page.get_by_label("Time (HH:MM)").fill("10:00")
        repeat = page.get_by_role("group", name="Repeat")
        repeat.get_by_label("How often").select_option(label="Every week")
        repeat.get_by_label("Number of visits").select_option(label="3 visits")
        page.get_by_role("button", name="Book", exact=True).click()

        expect(page.get_by_role("heading", level=1, name="Some dates of the series are not free")).to_be_visible()
        assert "Nothing was booked" in page.get_by_role("alert").inner_text()
        group = page.get_by_role("group", name=re.compile("^Instead of "))
        assert group.count() == 1 and re.search(ZONED, group.locator("legend").inner_text())
        assert group.get_by_role("radio").first.is_checked()
        assert Appointment.objects(patient=patient.id).count() == 0
        assert axe_violations(page) == []
        save_screenshot(page, "desk-series-conflict.png")
        group.locator("label").nth(1).click()
        chosen = group.get_by_role("radio").nth(1).get_attribute("value")
        page.get_by_role("button", name="Book all 3 visits").click()

        page.wait_for_url(re.compile(re.escape(f"{base}/admin/day/")))
        flashed = page.get_by_text(re.compile("^Booked " + re.escape(patient.name)))
        # A date moved to another time: the note lists the visits rather than saying "at the same time".
        assert "and 2 more visits: " in flashed.inner_text() and "at the same time" not in flashed.inner_text()
        assert re.search(ZONED, flashed.inner_text())
        assert axe_violations(page) == []
    finally:
        context.close()
    visits = list(Appointment.objects(patient=patient.id).order_by("start"))
    assert [v.start.replace(tzinfo=timezone.utc) for v in visits] == [
        at(day, 10).astimezone(timezone.utc), datetime.fromisoformat(chosen).astimezone(timezone.utc),
        at(day + timedelta(weeks=2), 10).astimezone(timezone.utc)]
    assert len({v.series for v in visits}) == 1


def test_reception_moves_this_and_the_later_visits_from_the_day_view(world, browser):
    base, day = world.base, future_day(2)
    patient = world.patients["pat@example.com"]
    ids = [v.id for v in book(world, "pat@example.com", at(day, 10), (1, 3))]
    taken = at(day + timedelta(weeks=2), 15)
    book(world, "other@example.com", taken)
    second = day + timedelta(weeks=1)
    context, page = staff_page(browser, base)
    try:
        page.goto(f"{base}/admin/day/?day={second.isoformat()}")
        panel = page.locator(f"#appt-{ids[1]}")
        panel.locator("summary").click()
        panel.get_by_role("link", name=f"Move {patient.name} at 10:00").click()
        page.wait_for_url(re.compile(r"/admin/day/move"))
        assert page.get_by_role("heading", level=1, name=f"Move {patient.name}'s appointment").is_visible()
        page.get_by_label(re.compile("^New time")).fill("15:00")
        scope = page.get_by_role("group", name="Which visits")
        assert scope.get_by_label("Only this visit").is_checked()
        scope.get_by_label("This visit and the 1 later visit of the series").check()
        assert axe_violations(page) == []
        page.get_by_role("button", name="Move the appointment").click()

        expect(page.get_by_role("alert")).to_contain_text("Nothing was moved")
        group = page.get_by_role("group", name=re.compile("^Instead of "))
        assert group.count() == 1 and re.search(ZONED, group.locator("legend").inner_text())
        assert scope.get_by_label("This visit and the 1 later visit of the series").is_checked()  # kept as chosen
        assert axe_violations(page) == []
        save_screenshot(page, "desk-series-move-conflict.png")
        chosen = group.get_by_role("radio").first.get_attribute("value")
        page.get_by_role("button", name="Move all the visits").click()

        page.wait_for_url(re.compile(re.escape(f"{base}/admin/day/")))
        flashed = page.get_by_text(re.compile("^Moved " + re.escape(patient.name)))
        assert "and the 1 later visit of the series" in flashed.inner_text()
        assert axe_violations(page) == []
    finally:
        context.close()
    assert starts(ids) == [at(day, 10).astimezone(timezone.utc), at(second, 15).astimezone(timezone.utc),
                           datetime.fromisoformat(chosen).astimezone(timezone.utc)]
