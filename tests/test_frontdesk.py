"""The front desk: home figures against the database, the day grid, actions with undo, staff booking
rules (notice lifted, walk-ins), new callers, desk payments and cancellations that state the refund."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, AuditEvent, Patient, Payment
from models.booking.create import book
from models.payments.desk import mark_paid_at_desk
from models.documents import Refund, utcnow
from models.errors import Conflict, ValidationFailed
from models.glance import glance
from models.status_words import status_words
from zoneinfo import ZoneInfo

from tests.support import factories
from tests.support.factories import (
    daytime_zone,
    form_csrf,
    make_patient,
    make_provider,
    staff_login,
)
from tests.support.clients import signed_in_staff

# The clinic lives where it is between 10:00 and 15:00 now: walk-ins, check-ins and "today's"
# figures then mean the same whatever the hour the suite runs (CI once ran it at 23:58).
ZONE_NAME = daytime_zone()
ZONE = ZoneInfo(ZONE_NAME)


def future_day(days=3):
    """A date in the clinic's zone `days` ahead."""
    return factories.future_day(days, ZONE)


def at(day, hh, mm=0):
    """A wall-clock time in the clinic's zone."""
    return factories.at(day, hh, mm, ZONE)


@pytest.fixture
def desk(app, clinic_world):
    return clinic_world(
        clinic={"tz": ZONE_NAME},
        services={"consult": dict(name="Consultation", duration=30, price=6000, notice=120),
                  "call": dict(name="Call", duration=15, price=0, notice=120)},
        providers={"one": dict(name="Dr One", hours=("00:00", "23:55"), lunch=None), "two": dict(name="Dr Two")},
        staff=("admin", "reception"), provider_staff="one", patients=["pat@example.com"])


def desk_token(client):
    """A Flask-WTF token of the client's session (the day view may show no form at all)."""
    return form_csrf(client.get("/admin/login").get_data(as_text=True))


def now_utc():
    return datetime.now(timezone.utc)


def raw_appointment(patient, provider, service, start, status="confirmed", amount=None, **extra):
    """An appointment written directly (past weeks, odd states) for the figures."""
    end = start + timedelta(minutes=service.duration_minutes)
    return Appointment(patient=patient, provider=provider, service=service, start=start, end=end,
                       block_start=start, block_end=end, status=status,
                       amount=service.price if amount is None else amount, currency="gbp",
                       booked_by="staff:test", **extra).save()


def test_home_figures_match_the_database(app, desk):
    now = now_utc()
    p, one, consult = desk["patient"], desk["one"], desk["consult"]
    local = now.astimezone(ZONE)
    today_noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    # Today: two to come (one paid online, one due at the desk), one arrived and paid in cash,
    # one no-show, one cancelled and refunded, one lapsed hold (not counted anywhere).
    paid_online = raw_appointment(p, one, consult, today_noon + timedelta(minutes=30))
    Payment(appointment=paid_online, patient=p, amount=6000, currency="gbp", status="succeeded",
            stripe_payment_intent="pi_x").save()
    due = raw_appointment(p, one, consult, today_noon + timedelta(minutes=60))
    arrived = raw_appointment(p, one, consult, today_noon - timedelta(minutes=30), status="checked_in")
    mark_paid_at_desk(arrived, "cash", now, "staff:test")
    raw_appointment(p, one, consult, today_noon - timedelta(minutes=90), status="no_show", amount=0)
    cancelled = raw_appointment(p, one, consult, today_noon + timedelta(minutes=120), status="cancelled")
    Payment(appointment=cancelled, patient=p, amount=6000, currency="gbp", status="refunded",
            amount_refunded=6000, stripe_payment_intent="pi_y",
            refunds=[Refund(amount=6000, status="succeeded")]).save()
    raw_appointment(p, one, consult, today_noon + timedelta(minutes=150), status="held",
                    hold_expires_at=now - timedelta(minutes=1))
    # A hold about to lapse (another day), and a refund refused by Stripe.
    lapsing = raw_appointment(p, one, consult, at(future_day(5), 10), status="held",
                              hold_expires_at=now + timedelta(minutes=5))
    stuck = raw_appointment(p, one, consult, at(future_day(6), 10), status="cancelled")
    Payment(appointment=stuck, patient=p, amount=6000, currency="gbp", status="succeeded",
            amount_refunded=0, stripe_payment_intent="pi_z",
            refunds=[Refund(amount=6000, status="failed", created_at=now)]).save()
    # Three weeks ago: a paid visit and a no-show.
    old = raw_appointment(p, one, consult, now - timedelta(days=21))
    Payment(appointment=old, patient=p, amount=6000, currency="gbp", status="succeeded",
            stripe_payment_intent="pi_old").save()
    raw_appointment(p, one, consult, now - timedelta(days=21) + timedelta(hours=1), status="no_show", amount=0)

    figures = glance(now, ZONE_NAME)
    assert figures.by_status == {"to_come": 2, "arrived": 1, "no_show": 1, "cancelled": 1}
    assert [a.id for a, _ in figures.lapsing] == [lapsing.id]
    assert [(a.id, amount) for a, amount in figures.due] == [(due.id, 6000)]
    assert figures.takings_today == 12000  # online 60 + cash 60, the refunded one nets 0
    assert figures.takings_by_method == {"online": 6000, "cash": 6000, "card_terminal": 0}
    assert [why for _, why in figures.attention] == ["refund of £60.00 refused by Stripe"]
    # The chart's numbers are the database's, week by week.
    assert len(figures.weeks) == 4
    assert figures.weeks[0]["bookings"] == 2 and figures.weeks[0]["no_shows"] == 1
    assert figures.weeks[0]["revenue"] == 6000
    assert figures.weeks[-1]["revenue"] >= 12000

    page = signed_in_staff(app, "reception").get("/admin/").get_data(as_text=True)
    statuses = dict(re.findall(r'data-status="(\w+)"><span class="fd-figure">(\d+)</span>', page))
    assert statuses == {"to_come": "2", "arrived": "1", "no_show": "1", "cancelled": "1"}
    assert 'id="takings-today">£120.00<' in page
    assert 'id="due-total">£60.00<' in page
    assert 'id="holds-count">1<' in page
    assert "<svg" in page and 'id="weeks-table"' in page and "refused by Stripe" in page


def test_provider_home_shows_only_its_own_day_and_no_money(app, desk):
    now = now_utc()
    raw_appointment(desk["patient"], desk["two"], desk["consult"], now + timedelta(minutes=5))
    page = signed_in_staff(app, "provider").get("/admin/").get_data(as_text=True)
    statuses = dict(re.findall(r'data-status="(\w+)"><span class="fd-figure">(\d+)</span>', page))
    assert statuses["to_come"] == "0"
    assert "Takings" not in page and "Find a patient" not in page


def test_staff_may_book_inside_notice_and_walk_ins_already_started(app, desk):
    now = now_utc()
    soon = (now + timedelta(minutes=10)).astimezone(ZONE)
    # The patient's own booking inside the 2-hour notice is refused ...
    with pytest.raises(ValidationFailed) as refused:
        later = (soon + timedelta(minutes=20)).replace(second=0, microsecond=0)
        book(desk["patient"], str(desk["consult"].id), str(desk["one"].id),
             later - timedelta(minutes=later.minute % 15), now)
    assert refused.value.code == "not_bookable_notice"
    # ... staff may, at any 5-minute time, and for a walk-in who started 5 minutes ago.
    walk_in = book(desk["patient"], str(desk["call"].id), str(desk["one"].id),
                   soon.replace(second=0, microsecond=0) - timedelta(minutes=soon.minute % 5), now,
                   booked_by="staff:x", pay_online=False, by_staff=True)
    assert walk_in.status == "confirmed"
    started = (now - timedelta(minutes=5)).astimezone(ZONE)
    other = make_patient(email="late@example.com", name="Late Walker")
    earlier = book(other, str(desk["call"].id), str(desk["one"].id),
                   started.replace(second=0, microsecond=0) - timedelta(minutes=started.minute % 5 + 15), now,
                   booked_by="staff:x", pay_online=False, by_staff=True)
    assert earlier.start < now
    # Yesterday stays in the past, even for staff.
    with pytest.raises(ValidationFailed) as past:
        book(other, str(desk["call"].id), str(desk["one"].id), at(future_day(-1), 10), now,
             booked_by="staff:x", pay_online=False, by_staff=True)
    assert past.value.code == "not_bookable_past"


def test_new_caller_booked_with_name_and_phone_only_and_audited(app, desk):
    client = signed_in_staff(app, "reception")
    day = future_day(2)
    form_page = client.get(f"/admin/day/new?day={day}&time=10:00&provider={desk['two'].id}").get_data(as_text=True)
    assert 'value="10:00"' in form_page and f'value="{desk["two"].id}" selected' in form_page
    resp = client.post("/admin/day/book", data={
        "csrf_token": form_csrf(form_page), "patient": "new", "name": "Nia Caller", "phone": "07700 900123",
        "service": str(desk["consult"].id), "provider": str(desk["two"].id), "day": day.isoformat(),
        "time": "10:00"})
    assert resp.status_code == 302
    patient = Patient.objects.get(name="Nia Caller")
    appt = Appointment.objects.get(patient=patient.id)
    assert appt.status == "confirmed" and appt.booked_by.startswith("staff:")
    assert appt.start == at(day, 10)
    assert AuditEvent.objects(action="appointment.book", record=f"Appointment:{appt.id}").count() == 1
    assert AuditEvent.objects(action="patient.create", record=f"Patient:{patient.id}").count() == 1
    follow = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Booked Nia Caller for Consultation with Dr Two" in follow and "£60.00 to pay at the desk" in follow
    # Found again by phone (any spacing, +44 form) and by name.
    from models.booking.frontdesk import find_patients

    assert [p.id for p in find_patients("+44 7700 900 123")] == [patient.id]
    assert [p.id for p in find_patients("nia")] == [patient.id]


def test_a_refused_booking_keeps_every_value_typed(app, desk):
    client = signed_in_staff(app, "reception")
    day = future_day(2)
    token = form_csrf(client.get("/admin/day/new").get_data(as_text=True))
    resp = client.post("/admin/day/book", data={
        "csrf_token": token, "patient": "new", "name": "Odd Hours", "phone": "07700 900999",
        "service": str(desk["consult"].id), "provider": str(desk["two"].id), "day": day.isoformat(),
        "time": "22:00"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "outside the provider&#39;s working hours" in html or "outside the provider's working hours" in html
    assert 'value="22:00"' in html and f'value="{day.isoformat()}"' in html and f'value="{desk["two"].id}" selected' in html
    # A refused booking saves no patient: the new caller's name and phone stay in the form, and
    # the retry with a working time creates the caller once, with the booking.
    assert Patient.objects(name="Odd Hours").count() == 0
    assert 'value="Odd Hours"' in html and 'value="07700 900999"' in html
    retry = client.post("/admin/day/book", data={
        "csrf_token": form_csrf(html), "patient": "new", "name": "Odd Hours", "phone": "07700 900999",
        "service": str(desk["consult"].id), "provider": str(desk["two"].id), "day": day.isoformat(),
        "time": "10:00"})
    assert retry.status_code == 302
    [caller] = Patient.objects(name="Odd Hours")
    assert Appointment.objects(patient=caller.id).count() == 1


def test_day_grid_columns_gaps_and_hidden_cancelled(app, desk):
    day = future_day(2)
    keep = raw_appointment(desk["patient"], desk["two"], desk["consult"], at(day, 10))
    gone = raw_appointment(desk["patient"], desk["two"], desk["consult"], at(day, 11), status="cancelled")
    Patient.objects(id=desk["patient"].id).update_one(set__phone="+44 20 7946 0000")
    client = signed_in_staff(app, "reception")
    page = client.get(f"/admin/day/?day={day}").get_data(as_text=True)
    assert f'id="appt-{keep.id}"' in page and f'id="appt-{gone.id}"' not in page
    assert "020 7946 0000" in page and "£60.00 due" in page
    assert "Show cancelled and expired (1)" in page
    assert "Break" in page  # Dr Two's lunch
    assert f'aria-label="Book Dr Two at 09:00"' in page and 'aria-label="Book Dr Two at 10:00"' not in page
    assert f'href="/admin/patients/details/?id={desk["patient"].id}"' in page
    # Check-in is not offered for another day; cancel is.
    assert f"Check in Pat Example" not in page and "Cancel Pat Example at 10:00" in page
    shown = client.get(f"/admin/day/?day={day}&show=all").get_data(as_text=True)
    assert f'id="appt-{gone.id}"' in shown
    # Statuses in words, the same words as the portal's and the lists' (models/status_words.py).
    assert f'<span class="status">{status_words(keep.status, audience="staff")}</span>' in shown
    assert '<span class="status">Cancelled by the clinic</span>' in shown and '<span class="status">cancelled</span>' not in shown
    week = client.get(f"/admin/day/week?day={day}").get_data(as_text=True)
    assert "Dr One" in week and "Dr Two" in week and "10:00 Pat Example" in week
    sheet = client.get(f"/admin/day/print?day={day}").get_data(as_text=True)
    assert "day sheet" in sheet and "020 7946 0000" in sheet


def test_provider_sees_own_column_and_only_its_actions(app, desk):
    now = now_utc()
    mine = raw_appointment(desk["patient"], desk["one"], desk["call"], now - timedelta(minutes=1))
    theirs = raw_appointment(desk["patient"], desk["two"], desk["call"], now + timedelta(minutes=1))
    client = signed_in_staff(app, "provider")
    page = client.get("/admin/day/").get_data(as_text=True)
    assert f'id="appt-{mine.id}"' in page and f'id="appt-{theirs.id}"' not in page
    assert "Dr Two" not in page and "Cancel…" not in page and "Paid in cash" not in page
    assert 'aria-label="Book ' not in page and "Walk-in now" not in page
    if mine.start.astimezone(ZONE).date() == now.astimezone(ZONE).date():
        assert "Check in Pat Example" in page and "No-show Pat Example" in page
    assert client.get("/admin/day/new").status_code == 403
    token = desk_token(client)
    resp = client.post("/admin/day/act", data={"op": "check_in", "appointment": str(theirs.id), "csrf_token": token})
    assert resp.status_code == 404


def test_check_in_and_no_show_each_undo(app, desk):
    now = now_utc()
    appt = book(desk["patient"], str(desk["call"].id), str(desk["one"].id),
                now.astimezone(ZONE).replace(second=0, microsecond=0) - timedelta(minutes=now.astimezone(ZONE).minute % 5),
                now, booked_by="staff:x", pay_online=False, by_staff=True)
    client = signed_in_staff(app, "reception")
    token = desk_token(client)
    resp = client.post("/admin/day/act", data={"op": "check_in", "appointment": str(appt.id), "csrf_token": token})
    assert Appointment.objects.get(id=appt.id).status == "checked_in"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Checked in Pat Example" in page and "Undo check-in" in page
    client.post("/admin/day/act", data={"op": "undo_check_in", "appointment": str(appt.id), "csrf_token": token})
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    client.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token})
    assert Appointment.objects.get(id=appt.id).status == "no_show"
    client.post("/admin/day/act", data={"op": "undo_no_show", "appointment": str(appt.id), "csrf_token": token})
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    # Its time is claimed again: nobody else can book over it.
    with pytest.raises(Conflict) as taken:
        book(make_patient(email="x@example.com", name="X"), str(desk["call"].id), str(desk["one"].id),
             appt.start.replace(tzinfo=timezone.utc), now, booked_by="staff:x", pay_online=False, by_staff=True)
    assert taken.value.code == "slot_taken"


def test_no_show_refused_before_start(app, desk):
    day = future_day(2)
    appt = raw_appointment(desk["patient"], desk["two"], desk["call"], at(day, 10))
    client = signed_in_staff(app, "reception")
    token = desk_token(client)
    resp = client.post("/admin/day/act", data={"op": "no_show", "appointment": str(appt.id), "csrf_token": token},
                       follow_redirects=True)
    assert "only after it was due to start" in resp.get_data(as_text=True)
    assert Appointment.objects.get(id=appt.id).status == "confirmed"


def test_mark_paid_at_desk_adds_to_takings_and_cancel_gives_it_back(app, desk):
    now = now_utc()
    appt = raw_appointment(desk["patient"], desk["one"], desk["consult"], now + timedelta(minutes=1))
    client = signed_in_staff(app, "reception")
    token = desk_token(client)
    before = glance(now, ZONE_NAME).takings_today if appt.start.replace(tzinfo=timezone.utc).astimezone(ZONE).date() == now.astimezone(ZONE).date() else None
    resp = client.post("/admin/day/act", data={"op": "pay", "method": "card_terminal", "appointment": str(appt.id),
                                               "csrf_token": token}, follow_redirects=True)
    assert "Payment recorded: £60.00 by card terminal from Pat Example" in resp.get_data(as_text=True)
    payment = Payment.objects.get(appointment=appt.id)
    assert payment.status == "succeeded" and payment.method == "card_terminal" and payment.paid_at
    if before is not None:
        assert glance(now_utc(), ZONE_NAME).takings_today == before + 6000
    again = client.post("/admin/day/act", data={"op": "pay", "method": "cash", "appointment": str(appt.id),
                                                "csrf_token": token}, follow_redirects=True)
    assert "already paid" in again.get_data(as_text=True)
    assert Payment.objects(appointment=appt.id).count() == 1
    # Cancelling states the refund first, needs a reason, and records the money given back.
    confirm = client.get(f"/admin/day/cancel?appointment={appt.id}").get_data(as_text=True)
    assert "Refund £60.00?" in confirm
    no_reason = client.post("/admin/day/act", data={"op": "cancel", "confirm": "yes", "reason": "",
                                                    "appointment": str(appt.id), "csrf_token": token})
    assert no_reason.status_code == 422 and Appointment.objects.get(id=appt.id).status == "confirmed"
    done = client.post("/admin/day/act", data={"op": "cancel", "confirm": "yes", "reason": "patient is unwell",
                                                "appointment": str(appt.id), "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "Cancelled Pat Example" in done and "Refund of £60.00 made." in done
    payment.reload()
    assert payment.status == "refunded" and payment.amount_refunded == 6000
    cancelled = Appointment.objects.get(id=appt.id)
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "patient is unwell"


def test_cancel_without_confirmation_only_asks(app, desk):
    appt = raw_appointment(desk["patient"], desk["two"], desk["call"], at(future_day(2), 10))
    client = signed_in_staff(app, "reception")
    token = desk_token(client)
    resp = client.post("/admin/day/act", data={"op": "cancel", "appointment": str(appt.id), "csrf_token": token})
    assert resp.status_code == 302 and "/admin/day/cancel" in resp.headers["Location"]
    assert Appointment.objects.get(id=appt.id).status == "confirmed"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Free of charge: there is nothing to refund." in page


def test_walk_in_form_starts_now_with_a_provider_free_now(app, desk):
    now = now_utc()
    local = now.astimezone(ZONE)
    client = signed_in_staff(app, "reception")
    page = client.get("/admin/day/new?walkin=1").get_data(as_text=True)
    assert "Walk-in: book now" in page
    assert f'value="{local:%H}:{local.minute - local.minute % 5:02d}"' in page
    assert f'value="{desk["one"].id}" selected' in page
    # Dr One busy now: not offered for the walk-in.
    raw_appointment(desk["patient"], desk["one"], desk["consult"], now - timedelta(minutes=10))
    busy = client.get("/admin/day/new?walkin=1").get_data(as_text=True)
    assert f'value="{desk["one"].id}" selected' not in busy


def test_bad_input_answers_with_a_page_not_a_traceback(app, desk):
    client = signed_in_staff(app, "reception")
    assert client.get("/admin/day/?day=not-a-date").status_code == 200
    for path in ("/admin/day/?day=2026-02-30", "/admin/day/print?day=2026-02-30", "/admin/day/week?day=xx"):
        page = client.get(path).get_data(as_text=True)
        assert "is not a date; showing today" in page, path
    assert client.get("/admin/day/week?day=2026-13-40").status_code == 200
    assert client.get("/admin/day/cancel?appointment=nope").status_code == 404
    token = desk_token(client)
    assert client.post("/admin/day/act", data={"op": "explode", "appointment": "x", "csrf_token": token}).status_code == 403
    resp = client.post("/admin/day/book", data={"csrf_token": token, "patient": "new", "name": "A B", "phone": "12",
                                               "service": "zzz", "provider": "zzz", "day": "2026-11-30",
                                               "time": "10:00"})
    assert resp.status_code == 422 and "phone number" in resp.get_data(as_text=True)
    resp = client.post("/admin/day/book", data={"csrf_token": token, "patient": str(desk["patient"].id),
                                               "service": "zzz", "provider": "zzz", "day": "2026-11-30",
                                               "time": "10:00"})
    assert resp.status_code == 404 and "That service does not exist." in resp.get_data(as_text=True)
    resp = client.post("/admin/day/book", data={"csrf_token": token, "patient": str(desk["patient"].id),
                                               "service": str(desk["call"].id), "provider": str(desk["one"].id),
                                               "day": "2026-11-30", "time": "25:99"})
    assert resp.status_code == 422 and Appointment.objects(patient=desk["patient"].id).count() == 0


def test_day_grid_on_the_days_the_clocks_change(app, desk):
    from datetime import date

    from models.daygrid import build_grid

    early = make_provider([desk["call"]], name="Dr Early", hours=("00:00", "05:00"), lunch=None)
    now = now_utc()
    spring = build_grid(date(2027, 3, 28), "Europe/London", [early], now)
    assert [label for _, label in spring.hours] == ["00:00", "02:00", "03:00", "04:00"]
    assert spring.minutes == 4 * 60  # 00:00 GMT to 05:00 BST is four real hours
    autumn = build_grid(date(2027, 10, 31), "Europe/London", [early], now)
    assert [label for _, label in autumn.hours] == ["00:00", "01:00", "01:00", "02:00", "03:00", "04:00"]
    assert autumn.minutes == 6 * 60


def test_chart_bars_are_drawn_to_scale_with_a_readable_axis():
    from datetime import date

    from admin.home import bar_chart

    rows = [{"start": date(2026, 11, 2 + 7 * i), "bookings": b, "no_shows": n} for i, (b, n) in
            enumerate(((5, 1), (4, 0), (0, 0), (10, 2)))]
    chart = bar_chart(rows, (("bookings", "Bookings", "b"), ("no_shows", "No-shows", "n")))
    heights = {bar["title"]: bar["h"] for bar in chart["bars"]}
    assert heights["Bookings, week of 23 Nov: 10"] == 2 * heights["Bookings, week of 2 Nov: 5"]
    assert heights["Bookings, week of 16 Nov: 0"] == 0
    assert [label for _, label in chart["ticks"]] == ["0", "5", "10"]
    empty = bar_chart([{"start": date(2026, 11, 2), "bookings": 0, "no_shows": 0}],
                      (("bookings", "Bookings", "b"),))
    assert [label for _, label in empty["ticks"]] == ["0", "1", "2"]


def test_callers_are_found_by_date_of_birth_and_a_known_email_is_not_duplicated(app, desk):
    from datetime import date

    from models.errors import Conflict
    from models.booking.frontdesk import create_caller, find_patients, has_email

    caller = create_caller("Ola Born", "+44 7700 900777", date_of_birth="01/02/1990")
    assert caller.date_of_birth == date(1990, 2, 1) and not has_email(caller)
    assert [p.id for p in find_patients("01/02/1990")] == [caller.id]
    assert [p.id for p in find_patients("1990-02-01")] == [caller.id]
    assert find_patients("02/01/1990") == []
    with pytest.raises(Conflict):
        create_caller("Pat Again", "07700 900888", email="PAT@example.com")
    assert Patient.objects(name="Pat Again").count() == 0
    # A caller without an email cannot sign in: the stored hash matches no password anyone knows.
    from models.accounts import authenticate

    assert authenticate(Patient, caller.email, "") is None


def test_a_caller_created_at_the_desk_with_an_email_is_invited_to_set_a_password(app, desk):
    from models.booking.frontdesk import create_caller
    from models.messages.outbox import OutboxMessage

    with_email = create_caller("Ivy Invite", "07700 900555", email="ivy@example.com")
    [invite] = OutboxMessage.objects(kind="invitation", patient=with_email.id)
    assert invite.to == "ivy@example.com" and invite.status == "queued"
    without = create_caller("Nel Noemail", "07700 900556")
    assert OutboxMessage.objects(kind="invitation", patient=without.id).count() == 0
    # Booked at the desk, a caller without an email gets no email (their placeholder address is in a
    # domain nothing can be delivered to): the confirmation and reminders go by text (issue 29).
    booked = book(without, str(desk["call"].id), str(desk["one"].id), at(future_day(3), 10), utcnow(),
                  booked_by="staff:x", pay_online=False, by_staff=True)
    assert booked.status == "confirmed"
    queued = OutboxMessage.objects(patient=without.id)
    assert queued.count() > 0 and {m.channel for m in queued} == {"sms"}
    assert {m.to for m in queued} == {"+447700900556"}


def test_reception_moves_an_appointment_from_the_day_view(app, desk):
    from models.messages.outbox import OutboxMessage
    from models.documents import TimeClaim

    day = future_day(3)
    appt = book(desk["patient"], str(desk["consult"].id), str(desk["two"].id), at(day, 10), utcnow(),
                booked_by="staff:x", pay_online=False, by_staff=True)
    client = signed_in_staff(app, "reception")
    grid = client.get(f"/admin/day/?day={day}").get_data(as_text=True)
    assert f'/admin/day/move?appointment={appt.id}' in grid
    form = client.get(f"/admin/day/move?appointment={appt.id}").get_data(as_text=True)
    assert "Move Pat Example" in form and 'value="10:00"' in form
    # Refused (outside the provider's hours): the page says why and nothing moves.
    refused = client.post("/admin/day/move", data={"csrf_token": form_csrf(form), "appointment": str(appt.id),
                                                   "new_day": day.isoformat(), "new_time": "22:00",
                                                   "provider": str(desk["two"].id)})
    assert refused.status_code == 422 and "working hours" in refused.get_data(as_text=True)
    assert Appointment.objects.get(id=appt.id).start == at(day, 10)
    moved = client.post("/admin/day/move", data={"csrf_token": form_csrf(form), "appointment": str(appt.id),
                                                 "new_day": day.isoformat(), "new_time": "14:30",
                                                 "provider": str(desk["one"].id)})
    assert moved.status_code == 302
    again = Appointment.objects.get(id=appt.id)
    assert again.start == at(day, 14, 30) and again.provider.id == desk["one"].id
    assert TimeClaim.objects(appointment=appt.id, provider=desk["two"].id).count() == 0
    assert TimeClaim.objects(appointment=appt.id, provider=desk["one"].id).count() > 0
    follow = client.get(moved.headers["Location"]).get_data(as_text=True)
    # The note names the zone, as every time the desk reads does.
    from models.formatting import short_time

    assert (f"Moved Pat Example from {short_time(at(day, 10), ZONE_NAME, year=False)} to "
            f"{short_time(at(day, 14, 30), ZONE_NAME, year=False)} with") in follow
    assert re.search(r"from \w{3} \d+ \w{3} 10:00 [A-Z+][A-Za-z0-9+:-]* to", follow)  # with its zone
    assert OutboxMessage.objects(kind="rescheduled", subject=f"Appointment:{appt.id}").count() == 1
    assert AuditEvent.objects(action="appointment.reschedule", record=f"Appointment:{appt.id}",
                              outcome="ok").count() == 1
    # A provider cannot move appointments.
    provider_client = app.test_client()
    assert staff_login(provider_client, "provider@clinic.test").status_code == 302
    assert provider_client.get(f"/admin/day/move?appointment={appt.id}").status_code == 403
