"""With the SMTP server stopped, booking goes on and messages wait; once it is back, all go out."""

import time
from datetime import timedelta

from devstack.servers import start_smtp
from models.documents import utcnow
from models.messages.outbox import OutboxMessage
from models.sweep import sweep
from tests.support.factories import api_login, at, csrf_header, future_day, make_clinic, make_patient, make_provider, make_service
from tests.support.mail import SmtpBox


def test_bookings_go_on_while_smtp_is_down_and_every_message_is_sent_once_it_is_back(make_app, tmp_path):
    server = start_smtp(str(tmp_path / "mail"))
    box = SmtpBox(server)
    port = server.port
    app = make_app(SMTP_URL=box.url, PUBLIC_URL="http://clinic.test")
    make_clinic()
    service = make_service(name="Check-up", price=0)
    provider = make_provider([service])
    server.stop()  # the mail server goes away
    try:
        day = future_day(4)
        emails = ["down1@example.com", "down2@example.com", "down3@example.com"]
        for hour, email in zip((9, 10, 11), emails):
            client = app.test_client()
            make_patient(email)
            api_login(client, email)
            started = time.monotonic()
            resp = client.post("/api/appointments", headers=csrf_header(client),
                               json={"service": str(service.id), "provider": str(provider.id),
                                     "start": at(day, hour).isoformat()})
            assert resp.status_code == 201, resp.get_json()
            assert time.monotonic() - started < 5  # booking never waits on SMTP

        with app.app_context():
            report = sweep()
        assert report.mail.sent == []
        assert any("cannot reach the SMTP server" in p for p in report.mail.problems)
        waiting = list(OutboxMessage.objects(kind="confirmed"))
        assert len(waiting) == 3
        assert all(m.status == "queued" for m in waiting)
        # The outage is not the messages' fault: no attempt is spent, the error is kept for staff.
        assert all(m.attempts == 0 for m in waiting)
        assert any("cannot reach the SMTP server" in m.last_error for m in waiting)
        with app.app_context():
            sweep(utcnow() + timedelta(minutes=1))  # a later pass, still down
        assert OutboxMessage.objects(kind="confirmed", status="queued").count() == 3

        server = start_smtp(str(tmp_path / "mail"), port=port)  # back, at the same address
        with app.app_context():
            report = sweep(utcnow() + timedelta(minutes=2))
        assert len(report.mail.sent) == 3
        for email in emails:
            received = box.wait_for(1, email)
            assert [m["Subject"].split(":")[0] for m in received] == ["Booked"]
        assert OutboxMessage.objects(kind="confirmed", status="sent").count() == 3
        with app.app_context():
            sweep(utcnow() + timedelta(minutes=3))
        assert len(box.messages()) == 3  # nothing twice
    finally:
        server.stop()
