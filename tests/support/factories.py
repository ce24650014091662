"""Factories for test data, written through the same domain functions the doors use."""

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from models.accounts import create_staff, register_patient

PASSWORD = "correct horse battery"
LONDON = ZoneInfo("Europe/London")  # the test clinic's zone (make_clinic's default)

# Zones whose offsets put some zone's clock between 10:00 and 15:00 at every UTC hour of the year.
DAYTIME_ZONES = ("Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Honolulu",
                 "Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata", "Asia/Dubai")


def daytime_zone(now=None, earliest=10, before=15):
    """A clinic zone (London when it can) whose clock reads between `earliest`:00 and `before`:00 now.

    Tests that act on "today" or "now" on the real clock (walk-ins, check-ins, texts outside quiet
    hours) put their clinic there, so they mean the same thing whatever the hour the suite runs.
    """
    now = now or datetime.now(timezone.utc)
    for zone in DAYTIME_ZONES:
        if earliest <= now.astimezone(ZoneInfo(zone)).hour < before:
            return zone
    raise AssertionError(f"no zone in DAYTIME_ZONES is between {earliest}:00 and {before}:00 at {now}")


def future_day(days=3, tz=LONDON):
    """A local date in the clinic's zone a few days ahead of the real clock."""
    return (datetime.now(timezone.utc) + timedelta(days=days)).astimezone(tz).date()


def at(day, hh, mm=0, tz=LONDON):
    """A wall-clock time on a local date in the clinic's zone."""
    return datetime.combine(day, time(hh, mm), tz)


def within_a_day(hours=(9, 10, 11, 13, 14, 15, 16)):
    """The first on-the-hour start at least 2 h from the real clock among `hours` (the default
    provider's day, lunch left out): always inside a 24-hour cancellation window, whatever the hour
    the suite runs (a fixed "day after tomorrow, 10:00" was inside a 48-hour window only after 10:00)."""
    soonest = datetime.now(timezone.utc) + timedelta(hours=2)
    return next(at(future_day(d), h) for d in (0, 1, 2) for h in hours if at(future_day(d), h) >= soonest)


def make_patient(email="pat@example.com", password=PASSWORD, name="Pat Example"):
    """A registered patient."""
    return register_patient(email, password, name)


def make_staff(role="reception", email=None, password=PASSWORD):
    """A staff user of `role`."""
    return create_staff(email or f"{role}@clinic.test", role, password)


def api_login(client, email="pat@example.com", password=PASSWORD):
    """Sign a patient in through the API; returns the response."""
    return client.post("/api/auth/login", json={"email": email, "password": password})


def csrf_header(client, refresh=False):
    """The X-CSRF-TOKEN header value from the client's CSRF cookie."""
    name = "csrf_refresh_token" if refresh else "csrf_access_token"
    cookie = client.get_cookie(name)
    return {"X-CSRF-TOKEN": cookie.value if cookie else ""}


def make_clinic(tz="Europe/London", phone="+44 20 7946 0123", hold_minutes=15, step=15):
    """The clinic."""
    from models import Clinic

    return Clinic(name="Test Clinic", timezone=tz, currency="gbp", phone=phone, hold_minutes=hold_minutes,
                  slot_step_minutes=step).save()


def make_service(name="Consultation", duration=30, price=5000, before=0, after=0, notice=0,
                 horizon=60, cancel_hours=24):
    """A service with its policy."""
    from models import Service

    return Service(name=name, duration_minutes=duration, price=price, currency="gbp",
                   buffer_before_minutes=before, buffer_after_minutes=after, min_notice_minutes=notice,
                   horizon_days=horizon, cancellation_window_hours=cancel_hours).save()


def make_provider(services, name="Dr Test", hours=("09:00", "17:00"), lunch=("12:00", "13:00"),
                  weekdays=range(7)):
    """A provider offering `services`, working `hours` with a lunch break on `weekdays`."""
    from models import Break, DayHours, Provider, Schedule

    provider = Provider(name=name, email=f"{name.lower().replace(' ', '.')}@clinic.test",
                        services=list(services)).save()
    breaks = [Break(start=lunch[0], end=lunch[1])] if lunch else []
    Schedule(provider=provider, days=[DayHours(weekday=d, start=hours[0], end=hours[1], breaks=breaks)
                                      for d in weekdays]).save()
    return provider


def form_csrf(html):
    """The CSRF token of the first form on a page."""
    import re

    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1)


def staff_login(client, email="reception@clinic.test", password=PASSWORD):
    """Sign a staff user in through the real form."""
    token = form_csrf(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token})


def demo_paid_visit(**payment):
    """The demo clinic (`seed_demo`) with its patient's paid General consultation with Dr Amira Shah at
    10:00 on the first weekday a week or more ahead; the back-office page tests start from it."""
    from models import Patient, Payment, Provider, Service
    from models.booking.create import book
    from models.seed import seed_demo

    seed_demo()
    patient = Patient.objects.get(email="patient@clinic.test")
    amira = Provider.objects.get(email="amira.shah@clinic.test")
    consult = Service.objects.get(name="General consultation")
    day = future_day(7)
    while day.weekday() > 4:
        day += timedelta(days=1)
    appointment = book(patient, str(consult.id), str(amira.id), at(day, 10), datetime.now(timezone.utc))
    paid = Payment(appointment=appointment, patient=patient, amount=6000, currency="gbp", status="succeeded",
                   **payment).save()
    return {"patient": patient, "amira": amira, "consult": consult, "day": day, "appointment": appointment,
            "payment": paid}
