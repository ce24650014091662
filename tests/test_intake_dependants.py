"""Issue 28 through the API: intake questions (required → 422, too long → 422, unknown ignored, an
edited question keeps old answers readable), dependants (add, book for them, someone else's → 404,
the overlap rule per person, emails to the account holder), and export / erasure covering both."""

import pytest

from models import Appointment, Patient, Service
from models.catalog.documents import Question
from models.documents import utcnow
from models.messages.documents import OutboxMessage
from models.messages.rendering import render
from tests.support.clients import register_and_sign_in
from tests.support.factories import PASSWORD, at, future_day


@pytest.fixture
def world(app, clinic_world):
    w = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park"), "sam": dict(name="Sam Lee")})
    service = w["physio"]
    service.questions = [
        Question(label="Where does it hurt?", kind="long_text", required=True, help_text="e.g. lower back", position=1),
        Question(label="Seen a physio before?", kind="yes_no", position=2),
        Question(label="Which side?", kind="choice", choices=["Left", "Right"], position=3),
    ]
    service.save()
    return w


def _q(service, label):
    return next(q.qid for q in Service.objects.get(id=service.id).questions if q.label == label)


def _book(client, w, hour, provider="jo", **extra):
    return client.post("/api/appointments", json={"service": str(w["physio"].id), "provider": str(w[provider].id),
                                                  "start": at(future_day(3), hour).isoformat(), **extra})


def test_services_list_questions_in_order(app, world):
    services = app.test_client().get("/api/services").get_json()
    physio = next(s for s in services if s["name"] == "Physiotherapy")
    assert [(q["label"], q["kind"], q["required"]) for q in physio["questions"]] == [
        ("Where does it hurt?", "long_text", True), ("Seen a physio before?", "yes_no", False),
        ("Which side?", "choice", False)]
    assert physio["questions"][2]["choices"] == ["Left", "Right"]


def test_required_answer_missing_is_422_and_nothing_is_booked(app, world):
    client = register_and_sign_in(app)
    answer = _book(client, world, 10, answers={_q(world["physio"], "Seen a physio before?"): "yes"})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "answers_required"
    assert "Where does it hurt?" in answer.get_json()["error"]["message"]
    assert Appointment.objects.count() == 0
    # Blank counts as missing; too long and a choice not offered are refused too.
    assert _book(client, world, 10, answers={_q(world["physio"], "Where does it hurt?"): "   "}).status_code == 422
    too_long = _book(client, world, 10, answers={_q(world["physio"], "Where does it hurt?"): "x" * 2001})
    assert too_long.status_code == 422 and too_long.get_json()["error"]["code"] == "invalid_answer"
    wrong = _book(client, world, 10, answers={_q(world["physio"], "Where does it hurt?"): "knee",
                                              _q(world["physio"], "Which side?"): "Middle"})
    assert wrong.status_code == 422
    assert _book(client, world, 10, answers="knee").status_code == 422
    assert Appointment.objects.count() == 0


def test_answers_are_stored_with_label_and_kept_after_the_question_changes(app, world):
    client = register_and_sign_in(app)
    hurt, seen = _q(world["physio"], "Where does it hurt?"), _q(world["physio"], "Seen a physio before?")
    booked = _book(client, world, 10, answers={hurt: "<b>Left knee</b>", seen: True, "not-a-question": "ignored"})
    assert booked.status_code == 201, booked.get_json()
    body = booked.get_json()
    assert body["answers"] == [{"question": hurt, "label": "Where does it hurt?", "value": "<b>Left knee</b>"},
                               {"question": seen, "label": "Seen a physio before?", "value": "yes"}]
    # The admin edits the wording: the question keeps its id, its version goes up, the old answer
    # still reads with the words it was given under.
    service = Service.objects.get(id=world["physio"].id)
    service.questions[0].label = "Where is the pain?"
    service.save()
    service.reload()
    assert service.questions[0].qid == hurt and service.questions[0].version == 2
    stored = Appointment.objects.get(id=body["id"]).answers[0]
    assert (stored.label, stored.version, stored.value) == ("Where does it hurt?", 1, "<b>Left knee</b>")
    shown = client.get(f"/api/appointments/{body['id']}").get_json()
    assert shown["answers"][0]["label"] == "Where does it hurt?"
    # The patient's page shows the answer escaped.
    page = client.get(f"/portal/appointments/{body['id']}").get_data(as_text=True)
    assert "&lt;b&gt;Left knee&lt;/b&gt;" in page and "<b>Left knee</b>" not in page


def test_a_parent_books_for_a_child_and_the_email_goes_to_the_parent(app, world):
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    added = parent.post("/api/me/dependants", json={"name": "Kim Parent", "date_of_birth": "2018-04-02"})
    assert added.status_code == 201
    kid = added.get_json()
    assert kid["name"] == "Kim Parent" and kid["date_of_birth"] == "2018-04-02"
    assert parent.get("/api/me/dependants").get_json() == [kid]
    hurt = _q(world["physio"], "Where does it hurt?")
    booked = _book(parent, world, 10, answers={hurt: "wrist"}, **{"for": kid["id"]})
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["for"] == {"id": kid["id"], "name": "Kim Parent"}
    # Per person: the parent may be seen at the same time by another clinician...
    mine = _book(parent, world, 10, provider="sam", answers={hurt: "back"})
    assert mine.status_code == 201, mine.get_json()
    # ...but the child cannot be in two places at once.
    again = _book(parent, world, 10, provider="sam", answers={hurt: "wrist"}, **{"for": kid["id"]})
    assert again.status_code == 409
    listed = parent.get("/api/appointments").get_json()
    assert sorted(a["for"]["name"] for a in listed) == ["Kim Parent", "Pat Parent"]
    appt = Appointment.objects.get(id=booked.get_json()["id"])
    assert appt.patient.name == "Kim Parent" and appt.patient.guardian.email == "parent@example.com"
    # Email goes to the account holder and names the child.
    message = OutboxMessage.objects.get(appointment=appt.id, kind="confirmed")
    assert message.to == "parent@example.com"
    with app.app_context():
        rendered = render(message, utcnow())
    assert "For:   Kim Parent" in rendered.text
    assert ">For</th><td style=\"padding:4px 0;\">Kim Parent<" in rendered.html
    # The parent cancels the child's visit.
    assert parent.post(f"/api/appointments/{appt.id}/cancel").status_code == 200


def test_booking_for_someone_elses_dependant_is_404_and_dependants_never_sign_in(app, world):
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    kid = parent.post("/api/me/dependants", json={"name": "Kim", "date_of_birth": "2018-04-02"}).get_json()
    stranger = register_and_sign_in(app, email="other@example.com", name="Oli Other")
    hurt = _q(world["physio"], "Where does it hurt?")
    answer = _book(stranger, world, 11, answers={hurt: "x"}, **{"for": kid["id"]})
    assert answer.status_code == 404 and Appointment.objects.count() == 0
    assert stranger.delete(f"/api/me/dependants/{kid['id']}").status_code == 404
    bad = parent.post("/api/me/dependants", json={"name": "", "date_of_birth": "2999-01-01"})
    assert bad.status_code == 422
    stored = Patient.objects.get(id=kid["id"])
    login = app.test_client().post("/api/auth/login", json={"email": stored.email, "password": PASSWORD})
    assert login.status_code == 401


def test_export_and_erasure_cover_dependants_and_answers(app, world):
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    kid = parent.post("/api/me/dependants", json={"name": "Kim Parent", "date_of_birth": "2018-04-02"}).get_json()
    hurt = _q(world["physio"], "Where does it hurt?")
    booked = _book(parent, world, 10, answers={hurt: "sore wrist"}, **{"for": kid["id"]}).get_json()
    export = parent.get("/api/me/export").get_json()
    assert [d["name"] for d in export["dependants"]] == ["Kim Parent"]
    assert export["appointments"][0]["answers"][0]["value"] == "sore wrist"
    # Erasure waits for the child's upcoming visit, then takes the child's details too.
    assert parent.post("/api/me/delete", json={"password": PASSWORD}).status_code == 409
    assert parent.post(f"/api/appointments/{booked['id']}/cancel").status_code == 200
    assert parent.post("/api/me/delete", json={"password": PASSWORD}).status_code == 200
    child = Patient.objects.get(id=kid["id"])
    assert child.name == "Erased patient" and not child.active and child.date_of_birth is None
    assert Appointment.objects.get(id=booked["id"]).answers == []  # the health details go with the person


def test_removing_a_dependant_erases_them(app, world):
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    kid = parent.post("/api/me/dependants", json={"name": "Kim", "date_of_birth": "2018-04-02"}).get_json()
    assert parent.delete(f"/api/me/dependants/{kid['id']}").status_code == 200
    assert parent.get("/api/me/dependants").get_json() == []
    assert Patient.objects.get(id=kid["id"]).name == "Erased patient"


def test_the_caps_count_the_whole_household(app, clinic_world):
    w = clinic_world(clinic={"max_upcoming": 2}, services={"physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park")})
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    kid = parent.post("/api/me/dependants", json={"name": "Kim", "date_of_birth": "2018-04-02"}).get_json()
    assert _book(parent, w, 9).status_code == 201
    assert _book(parent, w, 10, **{"for": kid["id"]}).status_code == 201
    third = _book(parent, w, 11, **{"for": kid["id"]})
    assert third.status_code == 409 and third.get_json()["error"]["code"] == "too_many_holds"


def test_staff_find_a_dependant_with_their_guardian(app, world, staff_client):
    parent = register_and_sign_in(app, email="parent@example.com", name="Pat Parent")
    Patient.objects(email="parent@example.com").update_one(set__phone="+44 7700 900123")
    kid = parent.post("/api/me/dependants", json={"name": "Kim Parent", "date_of_birth": "2018-04-02"}).get_json()
    desk = staff_client("reception")
    by_name = desk.get("/admin/?q=Kim").get_data(as_text=True)
    assert "Kim Parent" in by_name and "account holder Pat Parent (07700 900123)" in by_name
    by_phone = desk.get("/admin/?q=07700900123").get_data(as_text=True)
    assert "Kim Parent" in by_phone  # the parent's number finds the child too
    listed = desk.get("/admin/patients/").get_data(as_text=True)
    assert "Pat Parent" in listed and "Account holder" in listed and "Booked for by" not in listed
