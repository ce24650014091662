"""Idempotent demo data: running it twice leaves the same data."""

from models.accounts.documents import Patient, StaffUser
from models.accounts.users import hash_password
from models.catalog.documents import Break, Clinic, DayHours, Provider, Question, Schedule, Service

DEMO_PASSWORD = "clinic-demo-2026"

SERVICES = [
    dict(name="General consultation", description="Thirty minutes with a doctor to talk through a new "
         "problem or a long-standing one.", duration_minutes=30, price=6000, buffer_after_minutes=5,
         min_notice_minutes=120, horizon_days=60, cancellation_window_hours=24),
    dict(name="Physiotherapy session", description="Assessment and treatment of joint, muscle or back "
         "pain, with exercises to take home.", duration_minutes=45, price=7500, buffer_before_minutes=5,
         buffer_after_minutes=10, min_notice_minutes=240, horizon_days=90,
         cancellation_window_hours=48),
    dict(name="Follow-up call", description="A short phone call about results or how a treatment is "
         "going.", duration_minutes=15, price=0, min_notice_minutes=60,
         horizon_days=30, cancellation_window_hours=2),
]
# Intake questions (issue 28): the physiotherapist asks two before the visit, one required.
PHYSIO_QUESTIONS = [
    dict(label="Where is the pain, and how long have you had it?", kind="long_text", required=True,
         help_text="For example: lower back, on and off for three months.", position=1),
    dict(label="Have you seen a physiotherapist about this before?", kind="yes_no", required=False, position=2),
]
PROVIDERS = [
    ("Dr Amira Shah", "amira.shah@clinic.test", ["General consultation", "Follow-up call"]),
    ("Dr Tom Evans", "tom.evans@clinic.test", ["General consultation", "Follow-up call"]),
    ("Jo Park", "jo.park@clinic.test", ["Physiotherapy session", "Follow-up call"]),
]
STAFF = [
    ("admin@clinic.test", "Alex Admin", "admin"),
    ("reception@clinic.test", "Rita Reception", "reception"),
    ("provider@clinic.test", "Dr Amira Shah", "provider"),
]
PATIENT = ("patient@clinic.test", "Pat Demo", "+44 20 7946 0000")


def _weekdays(start, end, lunch, days=range(5)):
    return [DayHours(weekday=d, start=start, end=end, breaks=[Break(start=lunch[0], end=lunch[1])])
            for d in days]


def seed_demo(password=DEMO_PASSWORD, hold_minutes=15):
    """Create the demo clinic, services, providers, schedules, staff and patient if missing."""
    clinic = Clinic.get()
    if clinic is None:
        clinic = Clinic(name="Riverside Clinic", timezone="Europe/London", currency="gbp",
                        hold_minutes=hold_minutes, phone="+44 20 7946 0123").save()
    services = {}
    for spec in SERVICES:
        service = Service.objects(name=spec["name"]).first()
        if service is None:
            service = Service(currency=clinic.currency, **spec).save()
        if spec["name"] == "Physiotherapy session" and not service.questions:
            service.questions = [Question(**q) for q in PHYSIO_QUESTIONS]
            service.save()
        services[spec["name"]] = service
    providers = {}
    for name, email, offered in PROVIDERS:
        provider = Provider.objects(email=email).first()
        if provider is None:
            provider = Provider(name=name, email=email, services=[services[s] for s in offered]).save()
        providers[email] = provider
        if not Schedule.objects(provider=provider).first():
            if email.startswith("jo."):
                # Physio works Tuesday to Saturday, later hours.
                days = _weekdays("10:00", "18:00", ("13:00", "14:00"), days=range(1, 6))
            else:
                days = _weekdays("09:00", "17:00", ("12:30", "13:30"))
            Schedule(provider=provider, days=days).save()
    logins = []
    for email, name, role in STAFF:
        if not StaffUser.objects(email=email).first():
            linked = providers["amira.shah@clinic.test"] if role == "provider" else None
            StaffUser(email=email, name=name, role=role, provider=linked,
                      password_hash=hash_password(password)).save()
        logins.append((f"staff ({role})", email))
    email, name, phone = PATIENT
    if not Patient.objects(email=email).first():
        Patient(email=email, name=name, phone=phone, password_hash=hash_password(password)).save()
    logins.append(("patient", email))
    return clinic, logins
