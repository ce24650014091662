"""Issue 26: staff tell patients apart (date of birth, phone, email, last and next visit in search
results; no placeholder address shown), a new caller who matches a known patient is asked about,
the booking form lists only the clinicians of the chosen service, a free time opens the review, and
booking over a conflict is a separate step with its reason."""

from datetime import datetime, timedelta, timezone

import pytest

from models import Appointment, Patient
from models.booking.frontdesk import create_caller, possible_duplicates
from models.formatting import short_date
from tests.support.clients import signed_in_staff
from tests.support.factories import at, form_csrf, future_day


@pytest.fixture
def desk(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation", duration=30, price=6000, notice=120),
                  "physio": dict(name="Physiotherapy", duration=45, price=5000, notice=120)},
        providers={"one": dict(name="Dr One", hours=("08:00", "18:00"), lunch=None, services=["consult"]),
                   "two": dict(name="Dr Two", hours=("08:00", "18:00"), lunch=None, services=["physio"])},
        staff=("admin", "reception"), patients=["pat@example.com"])


def past_visit(patient, provider, service, start, status="completed"):
    end = start + timedelta(minutes=30)
    return Appointment(patient=patient, provider=provider, service=service, start=start, end=end,
                       block_start=start, block_end=end, status=status, amount=0, currency="gbp").save()


def test_search_shows_birth_date_phone_email_and_visits_never_a_placeholder(app, desk):
    maria = create_caller("Maria Lopez", "07700 900111", date_of_birth="02/03/1984", invite=False)
    create_caller("Maria Lopez", "07700 900222", email="maria.l@example.com", date_of_birth="1990-07-09", invite=False)
    past_visit(maria, desk["one"], desk["consult"], at(future_day(-10), 10))
    past_visit(maria, desk["one"], desk["consult"], at(future_day(4), 11), status="confirmed")
    page = signed_in_staff(app, "reception").get("/admin/?q=Maria").get_data(as_text=True)
    assert "born 02/03/1984 · 07700 900111 · no email" in page
    assert "born 09/07/1990 · 07700 900222 · maria.l@example.com" in page
    # Dates as the one formatter writes them ("3 Dec 2026"; CLDR's en_GB says "Sept" in September).
    assert f"last visit {short_date(at(future_day(-10), 10), weekday=False, year=True)}" in page
    assert f"next {short_date(at(future_day(4), 11), weekday=False, year=True)} 11:00" in page
    assert "no-email.invalid" not in page
    form = signed_in_staff(app, "reception").get("/admin/day/new?q=Maria").get_data(as_text=True)
    assert "born 02/03/1984" in form and "no-email.invalid" not in form


def test_possible_duplicates_by_name_and_birth_date_phone_or_email(app, desk):
    known = create_caller("Maria Lopez", "+44 7700 900111", email="m@example.com", date_of_birth="02/03/1984",
                          invite=False)
    assert [p.id for p in possible_duplicates("maria lopez", date_of_birth="1984-03-02")] == [known.id]
    assert [p.id for p in possible_duplicates("Someone Else", phone="07700 900111")] == [known.id]
    assert [p.id for p in possible_duplicates("Someone Else", email="M@example.com")] == [known.id]
    assert possible_duplicates("Maria Lopez", date_of_birth="1984-03-03", phone="07700 999999") == []


def test_a_new_caller_matching_a_patient_is_warned_and_offered_the_record(app, desk):
    create_caller("Maria Lopez", "07700 900111", date_of_birth="02/03/1984", invite=False)
    client = signed_in_staff(app, "reception")
    day = future_day(3)
    form = {"csrf_token": form_csrf(client.get("/admin/day/new").get_data(as_text=True)), "day": day.isoformat(),
            "time": "10:00", "service": str(desk["consult"].id), "provider": str(desk["one"].id),
            "patient": "new", "name": "Maria Lopez", "phone": "07700 900999", "date_of_birth": "02/03/1984"}
    warned = client.post("/admin/day/book", data=form)
    page = warned.get_data(as_text=True)
    assert warned.status_code == 409 and "may already be a patient" in page
    assert "Use Maria Lopez" in page and "None of these: a new patient" in page
    assert Patient.objects(name="Maria Lopez").count() == 1 and Appointment.objects.count() == 0
    # Staff say it is someone else: the new record is made with the booking.
    made = client.post("/admin/day/book", data=dict(form, confirm_new="yes"))
    assert made.status_code == 302 and Patient.objects(name="Maria Lopez").count() == 2


def test_the_form_lists_only_the_clinicians_of_the_chosen_service(app, desk):
    client = signed_in_staff(app, "reception")
    page = client.get(f"/admin/day/new?service={desk['physio'].id}").get_data(as_text=True)
    select = page.split('id="book-provider"')[1].split("</select>")[0]
    assert "Dr Two" in select and "Dr One" not in select


def test_a_free_time_opens_the_review_and_one_more_post_books(app, desk):
    client = signed_in_staff(app, "reception")
    day = future_day(3)
    token = form_csrf(client.get("/admin/day/new").get_data(as_text=True))
    form = {"csrf_token": token, "day": day.isoformat(), "service": str(desk["consult"].id),
            "provider": str(desk["one"].id), "patient": str(desk["patient"].id), "time": "10:15"}
    review = client.post("/admin/day/review", data=form)
    text = review.get_data(as_text=True)
    assert review.status_code == 200 and "Book this appointment?" in text and "10:15" in text
    assert Appointment.objects.count() == 0  # the review holds nothing
    booked = client.post("/admin/day/book", data=form)
    assert booked.status_code == 302
    assert Appointment.objects.get(patient=desk["patient"].id).start == at(day, 10, 15)


def test_a_conflict_opens_a_separate_override_step_that_needs_a_reason(app, desk):
    client = signed_in_staff(app, "reception")
    day = future_day(3)
    other = create_caller("Other Person", "07700 900333", invite=False)
    past_visit(other, desk["one"], desk["consult"], at(day, 10), status="confirmed")
    from models.booking.claims import claim_time  # the 10:00 time is taken
    appt = Appointment.objects.get(patient=other.id)
    claim_time(desk["one"].id, appt.id, at(day, 10).astimezone(timezone.utc), at(day, 10, 30).astimezone(timezone.utc),
               None, datetime.now(timezone.utc))
    token = form_csrf(client.get("/admin/day/new").get_data(as_text=True))
    form = {"csrf_token": token, "day": day.isoformat(), "service": str(desk["consult"].id),
            "provider": str(desk["one"].id), "patient": str(desk["patient"].id), "time": "10:00"}
    refused = client.post("/admin/day/book", data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "Book over the conflict" in page and "Reason for booking over" in page
    no_reason = client.post("/admin/day/book", data=dict(form, override="yes"))
    assert no_reason.status_code == 422 and "Give the reason for the override." in no_reason.get_data(as_text=True)
    assert Appointment.objects(patient=desk["patient"].id).count() == 0
    done = client.post("/admin/day/book", data=dict(form, override="yes", override_reason="urgent"))
    assert done.status_code == 302
    assert Appointment.objects.get(patient=desk["patient"].id).override
