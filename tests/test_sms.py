"""Text messages (issue 29) against the stack's Twilio-compatible stand-in: phone numbers in E.164,
`contact_by`, each kind by text in one segment, STOP, quiet hours, provider failures."""

import random
from datetime import datetime, timedelta, timezone

from devstack.sms_standin import sign
from models.accounts.patients import create_by_staff
from models.audit import AuditEvent
from models.booking.cancellation import cancel
from models.booking.create import book
from models.booking.reschedule import reschedule
from models.documents import Appointment, Patient
from models.messages import notify
from models.messages.documents import OutboxMessage, SmsOptOut
from models.messages.outbox import enqueue
from models.messages.quiet import in_quiet_hours, quiet_ends, reminder_due
from models.messages.sms import deliver_sms_due, is_gsm7
from tests.support.factories import LONDON, api_login, at, csrf_header, future_day, make_clinic, make_patient, make_provider, make_service

PUBLIC = "http://clinic.test"


def _number():
    """A UK mobile number of this test's own (Ofcom's drama range), E.164."""
    return f"+4477009{random.randint(0, 99999):05d}"


def _day_time(day, hh, mm=0):
    return at(day, hh, mm).astimezone(timezone.utc)


def _sms_app(make_app, sms_standin, **extra):
    return make_app(SMS_URL=sms_standin.url, SMS_FROM="+447700900000", PUBLIC_URL=PUBLIC, **extra)


def test_phone_numbers_are_stored_in_e164_and_bad_ones_refused_at_every_door(make_app):
    app = make_app()
    client = app.test_client()
    make_clinic()
    resp = client.post("/api/auth/register", json={"email": "e164@example.com", "password": "a long pass phrase",
                                                   "name": "Eve One", "phone": "07700 900123"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["phone"] == "+447700900123"
    bad = client.post("/api/auth/register", json={"email": "bad@example.com", "password": "a long pass phrase",
                                                  "name": "Bad Phone", "phone": "12ab"})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid"
    assert Patient.objects(email="bad@example.com").first() is None
    # The front desk's new caller, through the same rule.
    with app.app_context():
        caller = create_by_staff("Carl Caller", "+44 (0)7700 900456", invite=False)
    assert caller.phone == "+447700900456"

    api_login(client, "e164@example.com", "a long pass phrase")
    me = client.get("/api/me").get_json()
    assert me["phone"] == "+447700900123" and me["contact_by"] == ["email"]
    resp = client.patch("/api/me", headers=csrf_header(client), json={"phone": "not a number"})
    assert resp.status_code == 422 and "phone" in resp.get_json()["error"]["message"].lower()
    assert Patient.objects(email="e164@example.com").get().phone == "+447700900123"  # left as it was
    resp = client.patch("/api/me", headers=csrf_header(client), json={"contact_by": ["carrier pigeon"]})
    assert resp.status_code == 422
    resp = client.patch("/api/me", headers=csrf_header(client), json={"phone": "07700 900789", "contact_by": ["email", "sms"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["phone"] == "+447700900789" and resp.get_json()["contact_by"] == ["email", "sms"]
    # Texts need a phone: taking it away while asking for texts is refused.
    resp = client.patch("/api/me", headers=csrf_header(client), json={"phone": "", "contact_by": ["sms"]})
    assert resp.status_code == 422
    assert AuditEvent.objects(action="patient.contact").count() >= 1


def test_a_phone_only_caller_gets_every_kind_by_text_in_one_segment(make_app, sms_standin):
    app = _sms_app(make_app, sms_standin)
    make_clinic()
    service = make_service(name="Physio", price=0)
    provider = make_provider([service])
    phone = _number()
    day = future_day(4)
    with app.app_context():
        # Booked by phone at the desk: no email at all.
        patient = create_by_staff("Paula Phone", phone, invite=False)
        now = _day_time(future_day(0), 12) if datetime.now(timezone.utc) < _day_time(future_day(0), 12) \
            else datetime.now(timezone.utc)
        appt = book(patient, service.id, provider.id, at(day, 10), now, by_staff=True, pay_online=False)
        # Day time, so quiet hours do not hold the texts back.
        send_at = _day_time(future_day(1), 12)
        deliver_sms_due(send_at)
        appt = Appointment.objects(id=appt.id).get()
        reschedule(appt, at(day, 11), send_at, actor="staff:test", by_staff=True)
        deliver_sms_due(send_at + timedelta(seconds=1))
        reminder_at = _day_time(day, 11) - timedelta(hours=2)
        deliver_sms_due(reminder_at + timedelta(minutes=1))
        appt = Appointment.objects(id=appt.id).get()
        cancel(appt, reminder_at + timedelta(minutes=2), by_staff=True, actor="staff:test")
        enqueue("waitlist_offer", phone, "WaitlistEntry:test", channel="sms", patient_id=patient.id,
                now=reminder_at, context={"service": "Physio", "start": at(day, 15).isoformat(),
                                          "expires_at": (reminder_at + timedelta(minutes=30)).isoformat(),
                                          "url": "/portal/waitlist"})
        notify.fee_due(appt, 2500, "gbp", "/portal/appointments/x/pay", reminder_at)
        deliver_sms_due(reminder_at + timedelta(minutes=3))
    texts = sms_standin.messages(to=phone)
    bodies = [t["body"] for t in texts]
    assert len(bodies) == 6, bodies  # confirmation, reschedule, reminder, cancellation, offer, fee
    assert "booked" in bodies[0] and "moved to" in bodies[1] and "Reminder" in bodies[2]
    # The last three went in one pass, in the order they fell due.
    assert sorted(next(i for i, b in enumerate(bodies) if word in b) for word in ("cancelled", "free for you", "£25.00")) == [3, 4, 5]
    for body in bodies:
        assert body.startswith("Test Clinic: ") or body.split(":")[0], body
        assert len(body) <= 160 and is_gsm7(body), body
        assert PUBLIC in body
    assert f"{PUBLIC}/a/{appt.id}" in bodies[0]
    assert "11:00 GMT" in bodies[1] or "11:00 BST" in bodies[1]
    assert all(t["from"] == "+447700900000" for t in texts)
    # Staff see each text, sent, in the Outbox.
    sent = OutboxMessage.objects(channel="sms", to=phone)
    assert {m.status for m in sent if m.kind != "reminder" or m.variant == "2h/sms"} >= {"sent"}


def test_reply_stop_ends_texts_and_a_forged_one_is_refused(make_app, sms_standin):
    app = _sms_app(make_app, sms_standin)
    client = app.test_client()
    make_clinic()
    phone = _number()
    with app.app_context():
        patient = create_by_staff("Stan Stop", phone, invite=False)
        queued = enqueue("waitlist_offer", phone, "WaitlistEntry:stop", channel="sms", patient_id=patient.id,
                         context={"service": "Physio", "url": "/portal/waitlist"})
    url = f"{PUBLIC}/webhooks/sms"
    params = {"From": phone, "To": "+447700900000", "Body": "Stop", "MessageSid": "SM1"}
    forged = client.post("/webhooks/sms", data=params, headers={"X-Twilio-Signature": sign("wrong", url, params)})
    assert forged.status_code == 403 and forged.get_json()["error"]["code"] == "bad_signature"
    assert SmsOptOut.objects(phone=phone).first() is None
    unsigned = client.post("/webhooks/sms", data=params)
    assert unsigned.status_code == 403

    resp = client.post("/webhooks/sms", data=params, headers={"X-Twilio-Signature": sms_standin.signature(url, params)})
    assert resp.status_code == 200 and "<Response" in resp.get_data(as_text=True)
    assert SmsOptOut.objects(phone=phone).count() == 1
    assert OutboxMessage.objects(id=queued.id).get().status == "dropped"
    with app.app_context():
        later = enqueue("waitlist_offer", phone, "WaitlistEntry:stop2", channel="sms", patient_id=patient.id,
                        context={"service": "Physio", "url": "/portal/waitlist"})
        deliver_sms_due(_day_time(future_day(1), 12))
    assert OutboxMessage.objects(id=later.id).get().drop_reason == "the number replied STOP"
    assert sms_standin.messages(to=phone) == []
    assert AuditEvent.objects(action="sms.opt_out", record=f"Phone:{phone}").count() == 1

    # START lets texts go again.
    start = dict(params, Body="START")
    client.post("/webhooks/sms", data=start, headers={"X-Twilio-Signature": sms_standin.signature(url, start)})
    assert SmsOptOut.objects(phone=phone).first() is None


def test_quiet_hours_hold_texts_until_eight_and_move_reminders_earlier(make_app, sms_standin):
    app = _sms_app(make_app, sms_standin)
    make_clinic()
    service = make_service(name="Early", price=0)
    service.update(set__reminder_hours=[2])
    provider = make_provider([service], hours=("08:00", "17:00"))
    phone = _number()
    day = future_day(5)
    with app.app_context():
        patient = create_by_staff("Quinn Quiet", phone, invite=False)
        booked_at = _day_time(future_day(1), 12)
        appt = book(patient, service.id, provider.id, at(day, 9), booked_at, by_staff=True, pay_online=False)
        reminder = OutboxMessage.objects(appointment=appt.id, kind="reminder", channel="sms").get()
        # 07:00 is quiet: the text reminder goes at 20:45 the evening before instead.
        assert reminder.due_at.replace(tzinfo=timezone.utc) == at(day - timedelta(days=1), 20, 45).astimezone(timezone.utc)

        # The confirmation falls due at 22:30: it waits until 08:00, then goes once.
        night = _day_time(future_day(1), 22, 30)
        report = deliver_sms_due(night)
        assert report.sent == [] and sms_standin.messages(to=phone) == []
        confirmation = OutboxMessage.objects(appointment=appt.id, kind="confirmed", channel="sms").get()
        assert confirmation.status == "queued" and confirmation.attempts == 0
        assert confirmation.due_at.replace(tzinfo=timezone.utc) == at(future_day(2), 8).astimezone(timezone.utc)
        deliver_sms_due(_day_time(future_day(2), 7, 59))
        assert sms_standin.messages(to=phone) == []
        deliver_sms_due(_day_time(future_day(2), 8, 0))
    assert len(sms_standin.messages(to=phone)) == 1

    # The pure rule, across the night.
    assert in_quiet_hours(at(day, 21), "Europe/London") and not in_quiet_hours(at(day, 20, 59), "Europe/London")
    assert quiet_ends(at(day, 2), "Europe/London") == at(day, 8).astimezone(timezone.utc)
    assert reminder_due(at(day, 23), "Europe/London") == at(day, 20, 45).astimezone(timezone.utc)
    assert reminder_due(at(day, 12), "Europe/London") == at(day, 12).astimezone(timezone.utc)


def test_provider_5xx_is_retried_with_backoff_and_a_bad_number_fails_with_its_reason(make_app, sms_standin):
    app = _sms_app(make_app, sms_standin)
    make_clinic()
    good, bad = _number(), "+15005550001"  # Twilio's magic "invalid number"
    with app.app_context():
        patient = create_by_staff("Rita Retry", good, invite=False)
        other = create_by_staff("Bob Badnumber", bad, invite=False)
        msg = enqueue("waitlist_offer", good, "WaitlistEntry:retry", channel="sms", patient_id=patient.id,
                      context={"service": "Physio", "url": "/portal/waitlist"})
        noon = _day_time(future_day(1), 12)
        sms_standin.fail_next(1, 503)
        report = deliver_sms_due(noon)
        assert report.retrying == [str(msg.id)]
        msg.reload()
        assert msg.status == "queued" and "503" in msg.last_error
        assert msg.due_at.replace(tzinfo=timezone.utc) == noon + timedelta(seconds=30)
        deliver_sms_due(noon + timedelta(seconds=10))  # not yet due again
        assert sms_standin.messages(to=good) == []
        deliver_sms_due(noon + timedelta(seconds=31))
        deliver_sms_due(noon + timedelta(seconds=90))  # and never twice
        assert len(sms_standin.messages(to=good)) == 1
        assert OutboxMessage.objects(id=msg.id).get().status == "sent"

        failing = enqueue("waitlist_offer", bad, "WaitlistEntry:bad", channel="sms", patient_id=other.id,
                          context={"service": "Physio", "url": "/portal/waitlist"})
        deliver_sms_due(noon + timedelta(minutes=5))
    failing.reload()
    assert failing.status == "failed" and "21211" in failing.last_error and "not a valid phone number" in failing.last_error


def test_two_sweeps_and_two_senders_started_together_send_each_text_once(make_app, sms_standin):
    """The forced race of tests/test_outbox.py, for texts: callers who get texts, and four senders
    (two sweeps, two text senders) released at the same instant through the real claim code."""
    import threading

    from models.sweep import sweep

    app = _sms_app(make_app, sms_standin)
    make_clinic()
    service = make_service(name="Physio", price=0)
    service.update(set__reminder_hours=[])  # only the confirmations fall due
    provider = make_provider([service])
    phones = [_number() for _ in range(6)]
    day = future_day(4)
    with app.app_context():
        for hour, phone in zip((9, 10, 11, 13, 14, 15), phones):
            caller = create_by_staff(f"Racer {hour}", phone, invite=False)
            book(caller, service.id, provider.id, at(day, hour), datetime.now(timezone.utc), by_staff=True,
                 pay_online=False)
    assert OutboxMessage.objects(channel="sms", kind="confirmed", status="queued").count() == 6

    noon = _day_time(future_day(1), 12)  # day time: quiet hours hold nothing back
    barrier = threading.Barrier(4)
    errors, sent = [], []

    def run(step):
        try:
            with app.app_context():
                barrier.wait()
                report = step(noon)
                texts = getattr(report, "sms", report)  # a sweep's texts; None when the other sweep held the lease
                sent.extend(texts.sent if texts is not None else [])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,))
               for step in (sweep, sweep, deliver_sms_due, deliver_sms_due)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sorted(sent) == sorted(set(sent)) and len(sent) == 6  # each text claimed and sent by one sender
    for phone in phones:
        assert len(sms_standin.messages(to=phone)) == 1, phone
    assert OutboxMessage.objects(channel="sms", kind="confirmed", status="sent").count() == 6
