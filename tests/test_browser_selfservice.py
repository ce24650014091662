"""In real Chromium: the one-screen booking page (phone, keyboard, before sign-in, the patient's zone),
reschedule, a waitlist offer, and axe-core on every portal page at desktop and phone sizes."""

import os
import re
from datetime import timedelta, timezone

import pytest
from playwright.sync_api import expect

from models import Appointment, Payment, TimeClaim
from models.booking.waitlist import WaitlistEntry
from tests.support.browser import portal_sign_in
from tests.support.factories import at, future_day
from tests.helpers import save_screenshot

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def axe_script():
    import axe_playwright_python

    with open(os.path.join(os.path.dirname(axe_playwright_python.__file__), "axe.min.js"), encoding="utf-8") as fh:
        return fh.read()


def axe_problems(page):
    """Serious and critical axe-core violations of the page, as readable lines."""
    page.evaluate(axe_script())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
def clinic(live_server, clinic_world):
    base, app = live_server(COOKIE_SECURE=False)
    world = clinic_world(
        services={"consult": dict(name="General consultation", duration=30, price=6000, notice=0, cancel_hours=24,
                                  description="A 30-minute appointment with a doctor to talk through a new problem."),
                  "call": dict(name="Follow-up call", duration=15, price=0, notice=0, cancel_hours=2,
                               description="A short phone call about results or how a treatment is going.")},
        providers={"amira": dict(name="Dr Amira Shah", hours=("08:00", "19:00"), lunch=("12:30", "13:30")),
                   "tom": dict(name="Dr Tom Evans", hours=("09:00", "17:00"))},
        patients=["pat@example.com", dict(email="other@example.com", name="Olive Other")])
    world.update(base=base, app=app)
    return world


def new_page(browser, size=DESKTOP, **options):
    context = browser.new_context(viewport=size, **options)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.problems = []
    page.on("console", lambda msg: page.problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    return page


def day_link(page, day):
    return page.locator(f"table.cal a[href*='day={day.isoformat()}']")


def test_browse_before_signing_in_then_register_and_come_back_to_the_review(clinic, browser):
    c = clinic
    page = new_page(browser, DESKTOP)
    base, day = c["base"], future_day(3)
    page.goto(f"{base}/portal/book")
    assert page.get_by_text("£60.00").first.is_visible()
    assert page.get_by_text("A 30-minute appointment with a doctor").is_visible()
    page.get_by_role("link", name=re.compile("^General consultation")).click()
    # Any clinician by default: the month calendar marks the days with free times.
    page.locator("table.cal td.free").first.wait_for()
    day_link(page, day).click()
    expect(page.get_by_role("heading", name=re.compile("^Times on "))).to_be_visible()
    assert page.get_by_role("heading", name="Morning").is_visible()
    assert page.get_by_role("heading", name="Afternoon").is_visible()
    assert page.get_by_role("heading", name="Evening").is_visible()  # Dr Shah works until 19:00
    # Each time once, although two clinicians are free at 10:00.
    assert page.locator("a.time", has_text=re.compile(r"^10:00")).count() == 1
    assert page.get_by_text("Europe/London (GMT)").is_visible()
    save_screenshot(page, "booking-desktop.png")

    page.locator("a.time", has_text=re.compile(r"^10:00")).click()
    review = page.locator("#review")
    assert review.get_by_text("Any available: Dr Amira Shah or Dr Tom Evans").is_visible()
    assert review.get_by_text("£60.00").is_visible()
    assert review.get_by_text("held for you for 15 minutes").is_visible()
    assert review.get_by_text("up to 24 hours before it starts").is_visible()
    save_screenshot(page, "booking-review-desktop.png")

    review.get_by_role("link", name="Create an account").click()
    page.get_by_label("Full name").fill("Nora New")
    page.get_by_label("Email").fill("nora@example.com")
    page.get_by_label("Password (at least 8 characters)").fill("a long new password 1")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/portal/book\?.*start=.*#review$"))  # back at the review
    assert page.locator("#review").get_by_text("£60.00", exact=True).is_visible()
    page.get_by_role("button", name="Hold this time and pay £60.00").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    assert page.get_by_role("heading", name="Your time is held — payment needed").is_visible()
    appt = Appointment.objects.get()
    assert appt.start.replace(tzinfo=timezone.utc) == at(day, 10).astimezone(timezone.utc)
    assert not page.problems, page.problems


def test_booking_on_a_phone(clinic, browser):
    c = clinic
    page = new_page(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    portal_sign_in(page, c["base"])
    day = future_day(3)
    page.goto(f"{c['base']}/portal/book?service={c['consult'].id}&provider=any&day={day.isoformat()}")
    save_screenshot(page, "booking-phone.png")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scroll: {width}"
    height = page.evaluate("document.documentElement.scrollHeight")
    # A whole day of times (08:00–19:00, every 15 minutes, two clinicians) with the calendar above it.
    assert height <= 3 * PHONE["height"], height
    print(f"\nphone: page {height} px tall with {page.locator('a.time').count()} times; width {width}")
    times = page.locator("a.time")
    assert times.count() >= 35
    # The visible text of every time is part of its accessible name (WCAG 2.5.3).
    for i in (0, times.count() // 2, times.count() - 1):
        link = times.nth(i)
        visible = link.evaluate("e => e.innerText.trim().split('\\n')[0]")
        box = link.bounding_box()
        assert box["height"] >= 44 and box["x"] + box["width"] <= PHONE["width"]
        assert page.get_by_role("link", name=re.compile("^" + re.escape(visible))).count() >= 1
    times.filter(has_text=re.compile(r"^14:30")).tap()
    page.get_by_role("button", name="Hold this time and pay £60.00").tap()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    assert Appointment.objects(status="held").count() == 1
    assert not page.problems, page.problems


def test_keyboard_only_booking_takes_few_key_presses(clinic, browser):
    c = clinic
    page = new_page(browser, DESKTOP)
    portal_sign_in(page, c["base"])
    day = future_day(3)
    page.goto(f"{c['base']}/portal/book?service={c['call'].id}&provider=any&day={day.isoformat()}")
    presses = []

    def press(key):
        presses.append(key)
        page.keyboard.press(key)

    def tab_to(predicate, limit=40):
        for _ in range(limit):
            press("Tab")
            if page.evaluate(predicate):
                return
        raise AssertionError(f"not reached by Tab: {predicate}")

    tab_to("document.activeElement.textContent.trim() === 'Skip to content'")
    press("Enter")
    tab_to("document.activeElement.textContent.trim() === 'Jump to the times'")
    press("Enter")
    tab_to("document.activeElement.classList.contains('time')")
    for _ in range(3):  # the fourth time of the day
        press("Tab")
    chosen = page.evaluate("document.activeElement.innerText.trim()").split("\n")[0]
    press("Enter")
    page.wait_for_url(re.compile(r".*#review$"))
    tab_to("document.activeElement.textContent.trim() === 'Book this time'")
    press("Enter")
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    assert page.get_by_role("heading", name="Your appointment is confirmed").is_visible()
    appt = Appointment.objects.get()
    assert appt.start.replace(tzinfo=timezone.utc).astimezone(at(day, 9).tzinfo).strftime("%H:%M") == chosen
    assert len(presses) <= 15, presses
    print(f"\nkeyboard: {len(presses)} key presses to book the fourth time of the day: {presses}")
    assert not page.problems, page.problems


def test_the_patients_own_zone_is_shown_beside_the_clinics(clinic, browser):
    c = clinic
    page = new_page(browser, DESKTOP, timezone_id="America/New_York")
    day = future_day(3)
    page.goto(f"{c['base']}/portal/book?service={c['call'].id}&provider={c['tom'].id}&day={day.isoformat()}")
    page.wait_for_url(re.compile(r".*tz=America%2FNew_York.*"))
    first = page.locator("a.time").first
    assert first.inner_text().split("\n")[0].strip() == "09:00"
    assert "04:00 your time" in first.inner_text()
    assert page.get_by_text("with your own time (America/New_York) below each").is_visible()
    assert not page.problems, page.problems


def test_reschedule_in_the_portal(clinic, browser):
    c = clinic
    day = future_day(4)
    page = new_page(browser, DESKTOP)
    portal_sign_in(page, c["base"])
    page.goto(f"{c['base']}/portal/book?service={c['call'].id}&provider={c['tom'].id}&day={day.isoformat()}")
    page.locator("a.time", has_text=re.compile(r"^10:00")).click()
    page.get_by_role("button", name="Book this time").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    appt_url = page.url
    page.get_by_role("link", name="Move this appointment").click()
    day_link(page, day + timedelta(days=1)).click()
    page.locator("a.time", has_text=re.compile(r"^15:00")).click()
    page.get_by_role("button", name="Move my appointment").click()
    page.wait_for_url(appt_url)
    assert page.get_by_text("Your appointment is moved to").is_visible()
    appt = Appointment.objects.get()
    assert appt.status == "confirmed"
    assert appt.start.replace(tzinfo=timezone.utc) == at(day + timedelta(days=1), 15).astimezone(timezone.utc)
    # The old time is free again.
    page.goto(f"{c['base']}/portal/book?service={c['call'].id}&provider={c['tom'].id}&day={day.isoformat()}")
    assert page.locator("a.time", has_text=re.compile(r"^10:00")).count() == 1
    assert not page.problems, page.problems


def test_a_waitlist_offer_is_accepted_after_another_patient_cancels(clinic, browser):
    c = clinic
    day = future_day(5)
    # Dr Tom's whole day is taken by Olive (confirmed); Pat waits for that day with Dr Tom.
    from models.booking.create import book
    from models.documents import Patient, utcnow

    olive = Patient.objects.get(email="other@example.com")
    taken = []
    start = at(day, 9)
    while start < at(day, 17):
        try:
            # Booked by the front desk: a patient's own online limit (6 upcoming) does not apply.
            taken.append(book(olive, str(c["consult"].id), str(c["tom"].id), start, utcnow(), pay_online=False,
                              booked_by="staff:reception"))
        except Exception:  # noqa: BLE001 — the lunch break and the day's end
            pass
        start += timedelta(minutes=30)
    assert taken
    page = new_page(browser, DESKTOP)
    portal_sign_in(page, c["base"])
    page.goto(f"{c['base']}/portal/book?service={c['consult'].id}&provider={c['tom'].id}&day={day.isoformat()}")
    assert page.locator("a.time").count() == 0 or page.url  # the day is full
    page.goto(f"{c['base']}/portal/waitlist")
    page.get_by_label("Service").select_option(label="General consultation")
    page.get_by_label("Clinician").select_option(label="Dr Tom Evans")
    page.get_by_label("First day").fill(day.isoformat())
    page.get_by_label("Last day").fill(day.isoformat())
    page.get_by_role("button", name="Join the waitlist").click()
    expect(page.get_by_text("You are on the waitlist")).to_be_visible()

    # Olive cancels her 11:00 through her own session (the API); the time is offered to Pat at once.
    other = new_page(browser, DESKTOP)
    portal_sign_in(other, c["base"], email="other@example.com")
    eleven = next(a for a in taken if a.start.replace(tzinfo=timezone.utc) == at(day, 11).astimezone(timezone.utc))
    other.goto(f"{c['base']}/portal/appointments/{eleven.id}")
    other.get_by_role("link", name="Cancel this appointment").click()
    other.get_by_role("button", name="Yes, cancel it").click()
    expect(other.get_by_text("Your appointment is cancelled.")).to_be_visible()
    # Olive does not see it as free: it is held for Pat.
    other.goto(f"{c['base']}/portal/book?service={c['consult'].id}&provider={c['tom'].id}&day={day.isoformat()}")
    assert other.locator("a.time", has_text=re.compile(r"^11:00")).count() == 0

    page.goto(f"{c['base']}/portal/")
    assert page.get_by_role("heading", name="A time is held for you").is_visible()
    page.get_by_role("link", name="See the offer").click()
    expect(page.get_by_text("A time is held for you:")).to_be_visible()
    page.get_by_role("button", name="Accept this time").click()
    page.wait_for_url(re.compile(r".*/portal/appointments/[0-9a-f]{24}$"))
    assert page.get_by_role("heading", name="Your time is held — payment needed").is_visible()
    entry = WaitlistEntry.objects.get()
    assert entry.status == "booked"
    assert Appointment.objects.get(id=entry.offer.id).start.replace(tzinfo=timezone.utc) == \
        at(day, 11).astimezone(timezone.utc)
    assert not page.problems and not other.problems, page.problems + other.problems


def portal_pages(c, browser):
    """Sign in, make data for every list, and return the portal's addresses to check."""
    from models.booking.create import book
    from models.documents import Patient, utcnow
    from models.booking.waitlist import join, offer_free_times

    pat = Patient.objects.get(email="pat@example.com")
    now = utcnow()
    day = future_day(3)
    upcoming = book(pat, str(c["call"].id), str(c["tom"].id), at(day, 9), now)
    held = book(pat, str(c["consult"].id), str(c["tom"].id), at(day, 11), now)
    lapsed = book(pat, str(c["consult"].id), str(c["tom"].id), at(day, 14), now)
    Appointment.objects(id=lapsed.id).update_one(set__hold_expires_at=now - timedelta(minutes=1))
    TimeClaim.objects(appointment=lapsed.id).update(set__expires_at=now - timedelta(minutes=1))
    past = Appointment(patient=pat, provider=c["tom"], service=c["consult"], start=now - timedelta(days=3),
                       end=now - timedelta(days=3) + timedelta(minutes=30), block_start=now - timedelta(days=3),
                       block_end=now - timedelta(days=3) + timedelta(minutes=30), status="completed", amount=6000,
                       currency="gbp").save()
    Payment(appointment=past, patient=pat, amount=6000, currency="gbp", status="succeeded",
            stripe_payment_intent="pi_test_receipt").save()
    join(pat, str(c["consult"].id), None, future_day(6), future_day(6), now)
    offer_free_times(now)
    b = c["base"]
    return [f"{b}/portal/login", f"{b}/portal/register", f"{b}/portal/book",
            f"{b}/portal/book?service={c['consult'].id}",
            f"{b}/portal/book?service={c['consult'].id}&provider=any&day={day.isoformat()}",
            f"{b}/portal/book?service={c['consult'].id}&provider=any&day={day.isoformat()}"
            f"&start={at(day, 16).isoformat()}",
            f"{b}/portal/", f"{b}/portal/appointments/{upcoming.id}",
            f"{b}/portal/appointments/{upcoming.id}/reschedule?day={future_day(4).isoformat()}",
            f"{b}/portal/appointments/{lapsed.id}", f"{b}/portal/appointments/{past.id}/receipt",
            f"{b}/portal/waitlist", f"{b}/portal/password"], held


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_serious_problem_on_any_portal_page(clinic, browser, size):
    c = clinic
    page = new_page(browser, size)
    anonymous = new_page(browser, size)
    urls, held = portal_pages(c, browser)
    # The visitor's view of the booking page and review, before signing in.
    for url in urls[:6]:
        anonymous.goto(url)
        assert not axe_problems(anonymous), (url, axe_problems(anonymous))
    portal_sign_in(page, c["base"])
    found = {}
    for url in urls[2:] + [f"{c['base']}/portal/appointments/{held.id}"]:
        page.goto(url)
        assert page.url.split("#")[0].startswith(url.split("#")[0].split("?")[0]), (url, page.url)
        problems = axe_problems(page)
        if problems:
            found[url] = problems
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (url, "scrolls sideways", overflow)
    assert not found, found
    assert not page.problems, page.problems
