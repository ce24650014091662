"""In real Chromium: reception reads today's numbers, books a walk-in and a new caller, checks a
patient in and undoes it, and cancels a paid appointment after reading the refund it states.
Every page visited is checked with axe-core (no serious or critical violations)."""

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from models import Appointment, Patient, Payment, StaffUser
from models.booking.create import book
from models.payments.desk import mark_paid_at_desk
from tests.support.factories import PASSWORD, daytime_zone, make_patient
from tests.helpers import save_screenshot
from tests.support.payments import CARD_OK, api_post, card_token, signed_in
from tests.a11y import assert_accessible

# The clinic lives where it is between 10:00 and 15:00 now, so "a walk-in in 10 minutes" and
# "check in the 30-minutes-from-now visit" fall inside a working day whatever the hour the suite runs.
ZONE_NAME = daytime_zone()
ZONE = ZoneInfo(ZONE_NAME)


def local_now():
    return datetime.now(timezone.utc).astimezone(ZONE)


@pytest.fixture
def desk(live_server, clinic_world):
    """A clinic with a full day: three providers (one works round the clock so tests can book now),
    a paid and a free service with 2 hours' notice, reception, and appointments in every state."""
    base, app = live_server(COOKIE_SECURE=False)
    # Dr Okafor works from 3 hours before now to 6 hours after (the clinic's clock reads 10:00-15:00),
    # so walk-ins can be booked now and the grid (and its screenshot) stays a working day's height.
    hour = local_now().hour
    world = clinic_world(
        clinic={"tz": ZONE_NAME},
        services={"consult": dict(name="Consultation", duration=30, price=6000, notice=120),
                  "call": dict(name="Phone call", duration=15, price=0, notice=120)},
        providers={"one": dict(name="Dr Ada Okafor", lunch=None,
                               hours=(f"{hour - 3:02d}:00", f"{hour + 6:02d}:00")),
                   "two": dict(name="Dr Ben Hale", hours=("08:00", "18:00")),
                   "three": dict(name="Dr Cara Lind", services=["consult"], hours=("09:00", "17:00"),
                                 lunch=("13:00", "13:30"))},
        staff=("reception", "admin"), patients=["pat@example.com"])
    consult, call, one, two, three = (world[key] for key in ("consult", "call", "one", "two", "three"))
    StaffUser.objects(id=world.staff["admin"].id).update_one(set__name="Admin")
    pat = world.patient
    Patient.objects(id=pat.id).update_one(set__phone="+44 7700 900001")
    now = datetime.now(timezone.utc)
    today = local_now().date()
    people = []
    for i, (name, phone) in enumerate((("Rosa Diaz", "+44 7700 900002"), ("Tom Price", "07700 900003"),
                                       ("Li Wei", "07700 900004"), ("Sam Ortiz", "07700 900005"))):
        p = make_patient(email=f"p{i}@example.com", name=name)
        Patient.objects(id=p.id).update_one(set__phone=phone)
        people.append(p)

    def staff_book(patient, service, provider, hh, mm):
        start = datetime.combine(today, datetime.min.time().replace(hour=hh, minute=mm), ZONE)
        try:
            return book(patient, str(service.id), str(provider.id), start, now, booked_by="staff:seed",
                        pay_online=False, by_staff=True)
        except Exception:
            return None  # the round-the-clock provider may be booked by a test later; skip clashes

    made = [staff_book(people[0], consult, two, 9, 0), staff_book(people[1], call, two, 10, 30),
            staff_book(people[2], consult, three, 9, 30), staff_book(people[3], consult, three, 14, 0),
            staff_book(people[0], call, three, 15, 0)]
    if made[0] is not None and made[0].start < now:
        Appointment.objects(id=made[0].id).update_one(set__status="checked_in")
        mark_paid_at_desk(made[0], "cash", now, "staff:seed")
    if made[2] is not None and made[2].start < now:
        Appointment.objects(id=made[2].id).update_one(set__status="no_show")
    # Three past weeks of visits, paid online, with a no-show each week, for the chart.
    for weeks_ago in (1, 2, 3):
        for i in range(2 + weeks_ago):
            start = datetime.combine(today - timedelta(days=7 * weeks_ago), datetime.min.time(), ZONE) \
                + timedelta(hours=9 + i)
            status = "no_show" if i == 0 else "completed"
            past = Appointment(patient=people[i % 4], provider=three, service=consult, start=start,
                               end=start + timedelta(minutes=30), block_start=start,
                               block_end=start + timedelta(minutes=30), status=status, amount=6000,
                               currency="gbp", booked_by="patient").save()
            if status == "completed":
                Payment(appointment=past, patient=people[i % 4], amount=6000, currency="gbp",
                        status="succeeded", stripe_payment_intent=f"pi_past_{weeks_ago}_{i}").save()
    return {"base": base, "app": app, "consult": consult, "call": call, "one": one, "two": two,
            "three": three, "patient": pat}


def sign_in(page, base, email="reception@clinic.test"):
    page.goto(f"{base}/admin/")
    page.wait_for_url(re.compile(re.escape(f"{base}/admin/login")))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/admin/")


def shoot(page, name):
    save_screenshot(page, name)


def test_reception_signs_in_and_reads_todays_numbers(desk, page):
    from models.glance import glance

    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, desk["base"])
    figures = glance(datetime.now(timezone.utc), ZONE_NAME)
    assert page.get_by_role("heading", name=re.compile("Today at a glance")).is_visible()
    for key, label in (("to_come", "To come"), ("arrived", "Arrived"), ("no_show", "No-show"),
                       ("cancelled", "Cancelled")):
        shown = page.locator(f"[data-status='{key}'] .fd-figure").inner_text()
        assert int(shown) == figures.by_status[key], label
    money = page.locator("#takings-today").inner_text()
    assert money == f"£{figures.takings_today / 100:,.2f}"
    assert page.locator("#weeks-table tbody tr").count() == 4
    assert page.get_by_role("link", name="Book", exact=True).is_visible()
    assert_accessible(page, "home")
    shoot(page, "home.png")
    page.get_by_role("link", name="Day view", exact=True).first.click()
    page.wait_for_url(re.compile(r"/admin/day/"))
    assert_accessible(page, "day view")
    # Open one appointment's details (phone, record, amount due, the actions that make sense).
    due = page.locator(".fd-appt", has_text="£60.00 due").first
    if due.count():
        due.locator("summary").click()
        expect(due.get_by_role("button", name=re.compile("Paid in cash"))).to_be_visible()
        assert_accessible(page, "day view with details open")
    shoot(page, "day.png")
    page.get_by_role("link", name="Week", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/day/week"))
    assert_accessible(page, "week view")
    shoot(page, "week.png")
    page.get_by_role("link", name="Day", exact=True).click()
    page.get_by_role("link", name="Print day sheet").click()
    page.wait_for_url(re.compile(r"/admin/day/print"))
    assert page.get_by_role("cell", name="07700 900002").first.is_visible()
    assert_accessible(page, "day sheet")
    # Patient search from home: by a phone number typed the way the caller says it.
    page.goto(f"{desk['base']}/admin/")
    page.get_by_label("Find a patient").fill("07700 900002")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Book Rosa Diaz").click()
    page.wait_for_url(re.compile(r"/admin/day/new\?patient="))
    assert page.get_by_label(re.compile("Rosa Diaz")).is_checked()
    assert_accessible(page, "booking form for a found patient")


def test_books_a_walk_in_starting_in_10_minutes(desk, page):
    start = local_now() + timedelta(minutes=10)
    start = start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % 5)
    base = desk["base"]
    sign_in(page, base)
    page.goto(f"{base}/admin/day/")
    page.get_by_role("link", name="Walk-in now").click()
    page.wait_for_url(re.compile(r"/admin/day/new"))
    assert page.get_by_role("heading", name="Walk-in: book now").is_visible()
    page.get_by_label("Find a patient").fill("pat exa")
    page.get_by_role("button", name="Find").click()
    page.get_by_label(re.compile("Pat Example")).check()
    page.get_by_label("Service").select_option(label="Consultation (30 min, £60.00)")
    page.get_by_label("Provider").select_option(label="Dr Ada Okafor")
    page.get_by_label("Time (HH:MM)").fill(f"{start:%H:%M}")
    assert_accessible(page, "booking form")
    page.get_by_role("button", name="Book", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    assert page.get_by_text(re.compile(r"Booked Pat Example for Consultation with Dr Ada Okafor")).is_visible()
    appt = Appointment.objects.get(patient=desk["patient"].id)
    # Inside the service's 2 hours' notice: allowed for staff, confirmed, paid at the desk.
    assert appt.start == start and appt.status == "confirmed" and appt.booked_by.startswith("staff:")
    assert page.locator(f"#appt-{appt.id}").is_visible()


def test_books_a_new_caller_in_at_most_8_clicks_and_3_page_loads(desk, page):
    base = desk["base"]
    sign_in(page, base)
    tomorrow = (local_now() + timedelta(days=1)).date()
    page.goto(f"{base}/admin/day/?day={tomorrow}")
    loads, clicks = [], []
    page.on("load", lambda p: loads.append(p.url))

    def click(locator):
        clicks.append(locator)
        locator.click()

    click(page.get_by_role("link", name="Book Dr Ben Hale at 11:00"))
    page.wait_for_url(re.compile(r"/admin/day/new"))
    assert page.get_by_label("Time (HH:MM)").input_value() == "11:00"
    assert page.get_by_label("Date", exact=True).input_value() == tomorrow.isoformat()
    click(page.get_by_label("Name"))
    page.keyboard.type("Nadia Caller")
    click(page.get_by_label("Phone"))
    page.keyboard.type("07700 900123")
    shoot(page, "book.png")
    click(page.get_by_role("button", name="Book", exact=True))
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    page.wait_for_load_state("load")
    assert page.get_by_text("Booked Nadia Caller for Consultation with Dr Ben Hale").is_visible()
    assert len(clicks) <= 8, len(clicks)
    assert len(loads) <= 3, loads
    patient = Patient.objects.get(name="Nadia Caller")
    assert patient.phone == "+447700900123"  # stored E.164
    appt = Appointment.objects.get(patient=patient.id)
    assert appt.start.astimezone(ZONE).strftime("%Y-%m-%d %H:%M") == f"{tomorrow} 11:00"
    assert_accessible(page, "day view after booking")


def test_checks_a_patient_in_and_undoes_it(desk, page):
    now = datetime.now(timezone.utc)
    start = local_now() + timedelta(minutes=30)
    start = start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % 5)
    appt = book(desk["patient"], str(desk["call"].id), str(desk["one"].id), start, now,
                booked_by="staff:seed", pay_online=False, by_staff=True)
    base = desk["base"]
    sign_in(page, base)
    page.goto(f"{base}/admin/day/")
    block = page.locator(f"#appt-{appt.id}")
    block.locator("summary").click()
    block.get_by_role("button", name=re.compile("Check in Pat Example")).click()
    page.wait_for_url(re.compile(r"undo=undo_check_in"))
    assert page.get_by_text(f"Checked in Pat Example ({start:%H:%M} with Dr Ada Okafor).").is_visible()
    assert page.locator(f"#appt-{appt.id}").get_attribute("data-status") == "checked_in"
    assert Appointment.objects.get(id=appt.id).status == "checked_in"
    assert_accessible(page, "day view with undo")
    page.get_by_role("button", name="Undo check-in").click()
    page.wait_for_url(re.compile(r"/admin/day/\?day=.*#appt-"))
    assert page.get_by_text("Check-in undone for Pat Example").is_visible()
    assert page.locator(f"#appt-{appt.id}").get_attribute("data-status") == "confirmed"
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_cancels_a_paid_appointment_confirming_the_stated_refund(desk, page, stripe_base):
    base, app = desk["base"], desk["app"]
    day = (local_now() + timedelta(days=3)).date()
    start = datetime.combine(day, datetime.min.time().replace(hour=10), ZONE)
    appt = book(desk["patient"], str(desk["consult"].id), str(desk["two"].id), start, datetime.now(timezone.utc))
    patient_client = signed_in(app)
    assert api_post(patient_client, f"/api/appointments/{appt.id}/payment").status_code == 200
    token = card_token(stripe_base, CARD_OK)["id"]
    paid = api_post(patient_client, f"/api/appointments/{appt.id}/payment/confirm", {"token": token})
    assert paid.status_code == 200, paid.get_json()
    assert Appointment.objects.get(id=appt.id).status == "confirmed"

    sign_in(page, base)
    page.goto(f"{base}/admin/day/?day={day}")
    block = page.locator(f"#appt-{appt.id}")
    block.locator("summary").click()
    block.get_by_role("link", name=re.compile("Cancel Pat Example")).click()
    page.wait_for_url(re.compile(r"/admin/day/cancel"))
    assert page.locator("#refund-question").inner_text() == "Refund £60.00?"
    assert_accessible(page, "cancel confirmation")
    shoot(page, "cancel.png")
    page.get_by_label("Reason for the cancellation").fill("Patient called: unwell")
    assert page.get_by_label("Full refund: £60.00").is_checked()  # the service's rule, preselected
    page.get_by_role("button", name="Cancel the appointment").click()
    page.wait_for_url(re.compile(r"/admin/day/\?day="))
    assert page.get_by_text("Cancelled Pat Example (10:00 with Dr Ben Hale). Refund of £60.00 made.").is_visible()
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.amount_refunded == 6000 and payment.status == "refunded"
    cancelled = Appointment.objects.get(id=appt.id)
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "Patient called: unwell"
    # Cancelled appointments are hidden until asked for.
    assert page.locator(f"#appt-{appt.id}").count() == 0
    page.get_by_role("link", name=re.compile("Show cancelled and expired")).click()
    assert page.locator(f"#appt-{appt.id}").get_attribute("data-status") == "cancelled"
