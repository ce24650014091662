"""Issue 26 and 28 follow-up: merging two patient records also moves the people the duplicate books
for (its dependants become the kept account holder's, who then sees and books for them) and its
saved card (when the kept record has none; when both have one the kept record's stays and the admin
is told). Through the back office's merge page, the patient API, and the stack's real localstripe."""

from datetime import datetime, timezone
from html import unescape

import pytest

from models import AuditEvent, Patient
from models.errors import Conflict
from models.merge import merge_patients
from tests.support.clients import register_and_sign_in, signed_in_staff
from tests.support.factories import at, form_csrf, future_day
from tests.support.payments import CARD_ALWAYS_3DS, save_card

KEEP, DUP = "maria@example.com", "maria.lopez@example.net"


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"check": dict(name="Check-up", duration=30, price=0)},
                        providers={"one": dict(name="Dr One")}, staff=("admin",))


def _merge(app, keep, dup):
    """An admin reviews merging `dup` into `keep`, then confirms; returns (review page, page after merging)."""
    admin = signed_in_staff(app, "admin")
    review = admin.get(f"/admin/patients/merge/?id={keep.id}&duplicate={dup.id}").get_data(as_text=True)
    done = admin.post("/admin/patients/merge/", data={"csrf_token": form_csrf(review), "id": str(keep.id),
                                                       "duplicate": str(dup.id), "confirm": "yes"},
                      follow_redirects=True)
    assert done.status_code == 200
    return unescape(review), unescape(done.get_data(as_text=True))


def test_the_kept_holder_sees_and_books_for_the_duplicates_dependant(app, world):
    keeper = register_and_sign_in(app, KEEP, "Maria Lopez")
    other = register_and_sign_in(app, DUP, "Maria Lopez")
    kim = other.post("/api/me/dependants", json={"name": "Kim Lopez", "date_of_birth": "2019-05-31"})
    assert kim.status_code == 201
    kim_id = kim.get_json()["id"]
    keep, dup = Patient.objects.get(email=KEEP), Patient.objects.get(email=DUP)
    assert keeper.get("/api/me/dependants").get_json() == []

    review, done = _merge(app, keep, dup)
    assert "People the duplicate books for, who become Maria Lopez's dependants:" in review
    assert "<li>Kim Lopez</li>" in review
    assert "Maria Lopez now books for Kim Lopez." in done

    # The account holder now sees Kim and books for her; emails about it come to the holder.
    assert [d["name"] for d in keeper.get("/api/me/dependants").get_json()] == ["Kim Lopez"]
    booked = keeper.post("/api/appointments", json={
        "service": str(world["check"].id), "provider": str(world["one"].id),
        "start": at(future_day(3), 10).isoformat(), "for": kim_id})
    assert booked.status_code == 201, booked.get_json()
    assert Patient.objects.get(id=kim_id).guardian.id == keep.id
    assert Patient.objects.get(id=keep.id).has_dependants
    assert AuditEvent.objects(action="patient.merge", record=f"Patient:{keep.id}", outcome="ok").count() == 1


def test_a_dependant_is_not_kept_over_a_duplicate_that_books_for_others(app, world):
    holder = register_and_sign_in(app, "holder@example.com", "Ann Lee")
    child = holder.post("/api/me/dependants", json={"name": "Sam Lee", "date_of_birth": "2015-01-02"}).get_json()
    other = register_and_sign_in(app, DUP, "Sam Lee")
    other.post("/api/me/dependants", json={"name": "Jo Lee", "date_of_birth": "2020-01-02"})
    keep, dup = Patient.objects.get(id=child["id"]), Patient.objects.get(email=DUP)
    with app.test_request_context(), pytest.raises(Conflict) as refused:
        merge_patients(keep, dup, datetime.now(timezone.utc), audit_as="staff:admin-test")
    assert "keep the account holder's record" in refused.value.message
    # Nothing changed: the duplicate still signs in and still books for Jo.
    assert Patient.objects.get(id=dup.id).active and Patient.objects.get(id=dup.id).merged_into is None
    assert [d["name"] for d in other.get("/api/me/dependants").get_json()] == ["Jo Lee"]


def test_the_kept_record_takes_the_duplicates_saved_card(app, world, stripe_base):
    keeper = register_and_sign_in(app, KEEP, "Maria Lopez")
    other = register_and_sign_in(app, DUP, "Maria Lopez")
    save_card(other, stripe_base)
    assert keeper.get("/api/me/card").status_code == 404
    keep, dup = Patient.objects.get(email=KEEP), Patient.objects.get(email=DUP)

    review, done = _merge(app, keep, dup)
    assert "Maria Lopez takes the duplicate's saved card (Visa card ending 4242)." in review
    assert "Maria Lopez took the duplicate's saved card (Visa card ending 4242)." in done
    card = keeper.get("/api/me/card")
    assert card.status_code == 200 and card.get_json()["last4"] == "4242"
    # The card is charged as its own Stripe Customer's: both moved, and the pointer holds neither.
    kept, gone = Patient.objects.get(id=keep.id), Patient.objects.get(id=dup.id)
    assert kept.stripe_customer.startswith("cus_") and kept.card_payment_method.startswith("pm_")
    assert not gone.card_payment_method and not gone.stripe_customer


def test_when_both_have_a_card_the_kept_records_stays_and_the_admin_is_told(app, world, stripe_base):
    keeper = register_and_sign_in(app, KEEP, "Maria Lopez")
    other = register_and_sign_in(app, DUP, "Maria Lopez")
    save_card(keeper, stripe_base)
    save_card(other, stripe_base, CARD_ALWAYS_3DS)
    keep, dup = Patient.objects.get(email=KEEP), Patient.objects.get(email=DUP)

    review, done = _merge(app, keep, dup)
    assert ("Both records have a saved card: Maria Lopez keeps their own (Visa card ending 4242); the "
            "duplicate's (Visa card ending 3184) is not moved and will not be charged.") in review
    assert ("Both records had a saved card: Maria Lopez kept their own (Visa card ending 4242); the "
            "duplicate's (Visa card ending 3184) was not moved and will not be charged.") in done
    assert keeper.get("/api/me/card").get_json()["last4"] == "4242"
