"""Issue 26 in real Chromium, counting what a person does: the weekly hours editor sets Monday to
Friday with lunch in at most 10 clicks and 1 page load; every action of an opened appointment is
clickable with the mouse when appointments are back to back (15:45 then 16:30); a phone caller is
booked from a free time through the review in at most 8 clicks. axe-core checks each page."""

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from models import Appointment, Patient, Schedule
from tests.support.factories import PASSWORD, make_patient
from tests.a11y import assert_accessible

LONDON = ZoneInfo("Europe/London")
pytestmark = pytest.mark.slow  # five Chromium walks, about a minute on 2 cores


@pytest.fixture
def desk(live_server, clinic_world):
    base, app = live_server(COOKIE_SECURE=False)
    world = clinic_world(
        services={"consult": dict(name="Consultation", duration=45, price=6000, notice=120),
                  "physio": dict(name="Physiotherapy", duration=30, price=5000, notice=120)},
        providers={"one": dict(name="Dr Ada Okafor", hours=("00:00", "23:55"), lunch=None, services=["consult"]),
                   "two": dict(name="Dr Ben Hale", hours=("08:00", "18:00"), services=["physio"]),
                   "new": dict(name="Dr New Starter", email="new@clinic.test", schedule=False, services=[])},
        staff=("reception", "admin"), patients=["pat@example.com"])
    return {"base": base, "app": app, **{k: world[k] for k in ("consult", "physio", "one", "two", "new")},
            "patient": world.patient}


def sign_in(page, base, email="reception@clinic.test"):
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")


def counting(page):
    """(clicks, loads, click): every click goes through `click`; every page load is recorded."""
    clicks, loads = [], []
    page.on("load", lambda p: loads.append(p.url))

    def click(locator):
        clicks.append(locator)
        locator.click()

    return clicks, loads, click


def test_weekly_hours_mon_to_fri_with_lunch_in_10_clicks_and_1_load(desk, page):
    page.set_default_timeout(5000)
    base = desk["base"]
    sign_in(page, base, "admin@clinic.test")
    page.goto(f"{base}/admin/schedules/new/?provider={desk['new'].id}")
    assert_accessible(page, "hours editor")
    clicks, loads, click = counting(page)
    click(page.get_by_label("Open on Monday"))  # fills 09:00-17:00
    click(page.get_by_role("button", name="Add a break on Monday"))  # suggests 12:00-13:00
    click(page.get_by_role("button", name="Copy Monday to weekdays"))
    preview = page.locator("#week-preview")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        assert preview.get_by_role("row", name=re.compile(day)).inner_text().endswith("09:00–12:00, 13:00–17:00")
    assert preview.get_by_role("row", name=re.compile("Saturday")).inner_text().endswith("Closed")
    assert loads == []  # nothing so far loaded a page
    assert_accessible(page, "hours editor after copying")
    click(page.get_by_role("button", name="Save hours").last)
    page.wait_for_url(re.compile(r"/admin/schedules/"))
    assert page.get_by_text("Hours saved for Dr New Starter.").is_visible()
    assert len(clicks) <= 10 and len(loads) <= 1, (len(clicks), loads)
    schedule = Schedule.objects.get(provider=desk["new"].id)
    assert [(d.weekday, d.start, d.end, [(b.start, b.end) for b in d.breaks]) for d in schedule.days] == [
        (d, "09:00", "17:00", [("12:00", "13:00")]) for d in range(5)]


def test_hours_editor_removes_a_break_and_marks_leave_without_javascript_too(desk, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(5000)
    try:
        base = desk["base"]
        sign_in(page, base, "admin@clinic.test")
        page.goto(f"{base}/admin/schedules/new/?provider={desk['new'].id}")
        page.get_by_label("Open on Monday").check()
        page.locator("#days-0-start").fill("09:00")
        page.locator("#days-0-end").fill("17:00")
        page.get_by_role("button", name="Add a break on Monday").click()
        page.locator("#days-0-breaks-0-start").fill("12:00")
        page.locator("#days-0-breaks-0-end").fill("13:00")
        page.get_by_role("button", name="Copy Monday to every day").click()
        expect(page.locator("[data-preview-day='6']")).to_have_text("09:00–12:00, 13:00–17:00")
        page.get_by_role("button", name="Remove this break on Sunday").click()
        expect(page.locator("[data-preview-day='6']")).to_have_text("09:00–17:00")
        page.get_by_role("button", name="Add days off").click()
        page.get_by_label("From", exact=True).fill("2027-08-02")
        page.get_by_label("Until (optional)").fill("2027-08-06")
        page.get_by_role("button", name="Save hours").last.click()
        page.wait_for_url(re.compile(r"/admin/schedules/$|/admin/schedules/\?"))
        schedule = Schedule.objects.get(provider=desk["new"].id)
        assert len(schedule.days) == 7 and schedule.days[6].breaks == []
        assert [(o.date.isoformat(), o.intervals) for o in schedule.overrides] == [
            (f"2027-08-0{d}", []) for d in range(2, 7)]
    finally:
        context.close()


def raw(patient, provider, service, start, status="confirmed"):
    end = start + timedelta(minutes=service.duration_minutes)
    return Appointment(patient=patient, provider=provider, service=service, start=start, end=end,
                       block_start=start, block_end=end, status=status, amount=service.price,
                       currency="gbp", booked_by="staff:test").save()


def test_each_action_of_back_to_back_appointments_is_clickable(desk, page):
    page.set_default_timeout(5000)
    today = datetime.now(timezone.utc).astimezone(LONDON).date()
    first = raw(desk["patient"], desk["one"], desk["consult"], datetime.combine(today, datetime.min.time(), LONDON)
                .replace(hour=15, minute=45))
    other = make_patient(email="next@example.com", name="Next Patient")
    second = raw(other, desk["one"], desk["consult"], datetime.combine(today, datetime.min.time(), LONDON)
                 .replace(hour=16, minute=30))
    base = desk["base"]
    sign_in(page, base)
    page.set_viewport_size({"width": 1280, "height": 900})

    def open_card(appt):
        page.goto(f"{base}/admin/day/?day={today}")
        card = page.locator(f"#appt-{appt.id}")
        card.locator("summary").click()
        return card

    def hit(control):
        """The control is what a mouse at its centre would click (not the card under it)."""
        box = control.bounding_box()
        on_top = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); "
                               "return e && (e.closest('button, a') || e).textContent.trim(); }",
                               [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert on_top == control.inner_text().strip(), on_top
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    card = open_card(first)
    assert_accessible(page, "day view with an opened appointment")
    hit(card.get_by_role("link", name=re.compile("Move Pat Example")))
    page.wait_for_url(re.compile(r"/admin/day/move"))
    assert "Pat Example" in page.locator("h1").inner_text()
    card = open_card(first)
    hit(card.get_by_role("link", name=re.compile("Cancel Pat Example")))
    page.wait_for_url(re.compile(r"/admin/day/cancel"))
    assert "Pat Example" in page.locator("h1").inner_text()
    card = open_card(first)
    hit(card.get_by_role("button", name=re.compile("Paid in cash Pat Example")))
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    assert "Payment recorded: £60.00 by cash from Pat Example" in page.locator(".alert").first.inner_text(), page.locator(".alert").all_inner_texts()
    card = open_card(first)
    hit(card.get_by_role("button", name=re.compile("Check in Pat Example")))
    page.wait_for_url(re.compile(r"undo=undo_check_in"))
    assert Appointment.objects.get(id=first.id).status == "checked_in"
    assert Appointment.objects.get(id=second.id).status == "confirmed"  # the 16:30 card was never hit


def test_phone_caller_booked_from_a_free_time_in_8_clicks(desk, page):
    page.set_default_timeout(5000)
    base = desk["base"]
    sign_in(page, base)
    tomorrow = (datetime.now(timezone.utc).astimezone(LONDON) + timedelta(days=1)).date()
    page.goto(f"{base}/admin/day/?day={tomorrow}")
    clicks, loads, click = counting(page)
    click(page.get_by_role("link", name="Book Dr Ben Hale at 11:00"))
    page.wait_for_url(re.compile(r"/admin/day/new"))
    # Dr Hale offers physiotherapy only: it is chosen, and the list holds only its clinicians.
    assert page.get_by_label("Service").input_value() == str(desk["physio"].id)
    assert page.locator("#book-provider option").all_inner_texts() == ["Dr Ben Hale"]
    click(page.get_by_label("Name"))
    page.keyboard.type("Nadia Caller")
    click(page.get_by_label("Phone"))
    page.keyboard.type("07700 900123")
    click(page.get_by_label(re.compile("Date of birth")))
    page.keyboard.type("14/05/1988")
    click(page.get_by_role("button", name="Show free times"))
    assert_accessible(page, "booking form with free times")
    click(page.get_by_role("button", name="Book at 11:30"))
    page.wait_for_url(re.compile(r"/admin/day/review"))
    assert page.get_by_role("heading", name="Book this appointment?").is_visible()
    assert_accessible(page, "booking review")
    click(page.get_by_role("button", name="Book", exact=True))
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    assert page.get_by_text("Booked Nadia Caller for Physiotherapy with Dr Ben Hale").is_visible()
    assert len(clicks) <= 8, len(clicks)
    patient = Patient.objects.get(name="Nadia Caller")
    assert patient.date_of_birth.isoformat() == "1988-05-14"
    appt = Appointment.objects.get(patient=patient.id)
    assert appt.start.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") == f"{tomorrow} 11:30"


def test_choosing_another_service_narrows_the_clinicians_in_the_page(desk, page):
    page.set_default_timeout(5000)
    base = desk["base"]
    sign_in(page, base)
    page.goto(f"{base}/admin/day/new?service={desk['consult'].id}")
    assert page.locator("#book-provider option").all_inner_texts() == ["Dr Ada Okafor"]
    page.get_by_label("Service").select_option(label="Physiotherapy (30 min, £50.00)")
    assert page.locator("#book-provider option").all_inner_texts() == ["Dr Ben Hale"]


def test_a_card_payment_is_partly_refunded_through_stripe_with_a_reason(desk, page, stripe_base):
    from models import Payment
    from models.booking.create import book
    from tests.support.payments import CARD_OK, api_post, card_token, signed_in

    page.set_default_timeout(5000)
    base, app = desk["base"], desk["app"]
    day = (datetime.now(timezone.utc).astimezone(LONDON) + timedelta(days=3)).date()
    start = datetime.combine(day, datetime.min.time().replace(hour=10), LONDON)
    appt = book(desk["patient"], str(desk["consult"].id), str(desk["one"].id), start, datetime.now(timezone.utc))
    patient_client = signed_in(app)
    assert api_post(patient_client, f"/api/appointments/{appt.id}/payment").status_code == 200
    token = card_token(stripe_base, CARD_OK)["id"]
    paid = api_post(patient_client, f"/api/appointments/{appt.id}/payment/confirm", {"token": token})
    assert paid.status_code == 200, paid.get_json()
    sign_in(page, base)
    page.goto(f"{base}/admin/day/cancel?appointment={appt.id}&day={day}")
    assert page.get_by_label("Full refund: £60.00").is_checked()
    page.get_by_label("Refund an amount").check()
    page.get_by_label(re.compile("Amount to refund")).fill("25")
    page.get_by_label(re.compile("Reason for the cancellation")).fill("Seen for ten minutes")
    assert_accessible(page, "cancel with refund choices")
    page.get_by_role("button", name="Cancel the appointment").click()
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    assert "Refund of £25.00 made." in page.locator(".alert").first.inner_text()
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 2500 and payment.status == "succeeded"
    assert [r.amount for r in payment.refunds] == [2500] and payment.refunds[0].status == "succeeded"
