"""Issue 28 in the back office over HTTP: the admin's intake form builder (add, reword, order a
question; ids kept and versions bumped, so old answers stay readable) and who may use it."""

import re

import pytest

from models import Service
from tests.support.factories import form_csrf, staff_login


@pytest.fixture
def world(app, clinic_world):
    return clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)},
                        staff=("admin", "reception"))


def _form(html):
    """Every field of the service form as a browser would post it (inputs, checked boxes, selects, textareas)."""
    data = {}
    for m in re.finditer(r'<input([^>]*)>', html):
        attrs = m.group(1)
        name = re.search(r'name="([^"]+)"', attrs)
        if not name:
            continue
        kind = (re.search(r'type="([^"]+)"', attrs) or [None, "text"])[1]
        if kind in ("checkbox", "radio") and "checked" not in attrs:
            continue
        if kind == "submit":
            continue
        value = re.search(r'value="([^"]*)"', attrs)
        data[name.group(1)] = value.group(1) if value else ("y" if kind == "checkbox" else "")
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option value="([^"]*)"[^>]*selected', m.group(2))
        data[m.group(1)] = (chosen.group(1) or chosen.group(2)) if chosen else \
            (re.search(r'<option[^>]*value="([^"]*)"', m.group(2)) or [None, ""])[1]
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[m.group(1)] = m.group(2).strip()
    return data


def test_the_admin_builds_questions_and_a_reworded_one_keeps_its_id(app, world):
    service = world["physio"]
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test").status_code == 302
    path = f"/admin/services/edit/?id={service.id}"
    html = client.get(path).get_data(as_text=True)
    assert "Kind of answer" in html or "questions" in html
    data = _form(html)
    data.update({"questions-0-label": "Where does it hurt?", "questions-0-kind": "long_text",
                 "questions-0-required": "y", "questions-0-help_text": "e.g. lower back", "questions-0-position": "2",
                 "questions-1-label": "Which side?", "questions-1-kind": "choice",
                 "questions-1-choices-0": "Left", "questions-1-choices-1": "Right", "questions-1-position": "1"})
    data["csrf_token"] = form_csrf(html)
    resp = client.post(path, data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    saved = Service.objects.get(id=service.id)
    assert [(q.label, q.kind, q.required, q.version) for q in saved.questions] == [
        ("Which side?", "choice", False, 1), ("Where does it hurt?", "long_text", True, 1)]
    ids = [q.qid for q in saved.questions]
    assert all(ids)
    # Reword one through the same form: same id, next version.
    html = client.get(path).get_data(as_text=True)
    data = _form(html)
    label_key = next(k for k, v in data.items() if v == "Where does it hurt?")
    data[label_key] = "Where is the pain?"
    data["csrf_token"] = form_csrf(html)
    resp = client.post(path, data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    saved = Service.objects.get(id=service.id)
    assert [(q.qid, q.label, q.version) for q in saved.questions] == [
        (ids[0], "Which side?", 1), (ids[1], "Where is the pain?", 2)]


def test_the_question_builder_names_each_kind_of_answer_in_words(app, world):
    Service.objects(id=world["physio"].id).update_one(push__questions={"label": "Seen before?", "kind": "yes_no"})
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test").status_code == 302
    html = client.get(f"/admin/services/edit/?id={world['physio'].id}").get_data(as_text=True)
    options = dict(re.findall(r'<option[^>]*value="(\w+)"[^>]*>\s*([^<]+?)\s*</option>', html))
    assert {k: options.get(k) for k in ("text", "long_text", "choice", "yes_no", "date")} == {
        "text": "Short text", "long_text": "Long text", "choice": "Choice", "yes_no": "Yes / no", "date": "Date"}
    assert re.search(r'<option[^>]*selected[^>]*value="yes_no"|<option[^>]*value="yes_no"[^>]*selected', html)


def test_reception_cannot_change_questions(app, world):
    client = app.test_client()
    assert staff_login(client, "reception@clinic.test").status_code == 302
    path = f"/admin/services/edit/?id={world['physio'].id}"
    assert client.get(path).status_code in (302, 403)


def test_staff_booking_asks_the_questions_through_the_same_rule(app, clinic_world):
    from models import Appointment
    from models.catalog.documents import Question
    from tests.support.clients import signed_in_staff
    from tests.support.factories import future_day

    w = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park")}, staff=("reception",), patients=["pat@example.com"])
    service = w["physio"]
    service.questions = [Question(label="Where does it hurt?", kind="text", required=True, position=1)]
    service.save()
    qid = Service.objects.get(id=service.id).questions[0].qid
    day = future_day()
    client = signed_in_staff(app, "reception")
    page = client.get(f"/admin/day/new?day={day}&service={service.id}&provider={w['jo'].id}"
                      f"&patient={w.patient.id}").get_data(as_text=True)
    assert "Where does it hurt?" in page and f'name="answer-{qid}"' in page
    form = {"csrf_token": form_csrf(page), "day": day.isoformat(), "patient": str(w.patient.id),
            "service": str(service.id), "provider": str(w["jo"].id), "time": "10:00"}
    refused = client.post("/admin/day/book", data=form)
    assert refused.status_code == 422 and "Please answer" in refused.get_data(as_text=True)
    assert Appointment.objects.count() == 0
    booked = client.post("/admin/day/book", data=dict(form, **{f"answer-{qid}": "Left shoulder <3"}))
    assert booked.status_code == 302
    appt = Appointment.objects.get()
    assert [(a.label, a.value) for a in appt.answers] == [("Where does it hurt?", "Left shoulder <3")]


def test_the_portal_review_keeps_typed_answers_after_a_refusal(app, clinic_world):
    from urllib.parse import quote

    from models import Appointment
    from models.catalog.documents import Question
    from tests.support.clients import register_and_sign_in
    from tests.support.factories import at, future_day

    w = clinic_world(services={"physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park")})
    service = w["physio"]
    service.questions = [Question(label="Where does it hurt?", kind="text", required=True, position=1),
                         Question(label="Anything else?", kind="long_text", position=2)]
    service.save()
    hurt, other = (q.qid for q in Service.objects.get(id=service.id).questions)
    client = register_and_sign_in(app)
    day = future_day(3)
    start = at(day, 10).isoformat()
    review = f"/portal/book?service={service.id}&provider=any&day={day}&start={quote(start)}"
    html = client.get(review).get_data(as_text=True)
    assert "Where does it hurt? <span class=\"required\">(required)</span>" in html
    answer = client.post("/portal/book", data={
        "csrf_token": form_csrf(html), "jwt_csrf": client.get_cookie("csrf_access_token").value,
        "service": str(service.id), "provider": "any", "start": start, "day": day.isoformat(),
        f"answer-{other}": "I use a <wheelchair>"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#review")
    again = client.get(answer.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert "Please answer “Where does it hurt?”" in again
    # Beside the question itself, a sentence saying what to do (not the API's bare "is required").
    assert f'<p class="field-error" id="q-{hurt}-error">Please answer this question.</p>' in again
    assert "I use a &lt;wheelchair&gt;</textarea>" in again  # kept, escaped
    assert Appointment.objects.count() == 0


def test_the_desk_form_holds_every_services_questions_and_a_free_time_keeps_the_chosen_service(app, clinic_world):
    from models.catalog.documents import Question
    from tests.support.clients import signed_in_staff
    from tests.support.factories import future_day

    w = clinic_world(services={"call": dict(name="Follow-up call", duration=15, price=0),
                               "physio": dict(name="Physiotherapy", duration=30, price=0)},
                     providers={"jo": dict(name="Jo Park")}, staff=("reception",))
    physio = w["physio"]
    physio.questions = [Question(label="Where does it hurt?", kind="text", required=True, position=1)]
    physio.save()
    day = future_day()
    client = signed_in_staff(app, "reception")
    gap = f"/admin/day/new?day={day}&time=10:00&provider={w['jo'].id}"
    page = client.get(gap).get_data(as_text=True)
    # Drawn with another service chosen, Physiotherapy's questions are in the page, hidden and not sent.
    assert re.search(rf'<option value="{w["call"].id}" selected', page)
    hidden = re.search(rf'<fieldset class="intake" data-questions-for="{physio.id}"([^>]*)>', page)
    assert hidden and "hidden" in hidden.group(1) and "disabled" in hidden.group(1)
    assert "Questions for the patient" in page and "Before your visit" not in page
    # Once the desk has chosen Physiotherapy, the next free time clicked in the grid keeps it.
    client.get(f"/admin/day/new?day={day}&service={physio.id}&provider={w['jo'].id}&show_times=1")
    page = client.get(gap).get_data(as_text=True)
    assert re.search(rf'<option value="{physio.id}" selected', page)
    shown = re.search(rf'<fieldset class="intake" data-questions-for="{physio.id}"([^>]*)>', page)
    assert shown and "hidden" not in shown.group(1)


def test_a_new_question_goes_after_the_last_and_the_form_speaks_of_questions_one_by_one(app, world):
    from models.catalog.documents import Question

    service = world["physio"]
    service.questions = [Question(label="Where does it hurt?", position=1), Question(label="Which side?", position=2)]
    service.save()
    client = app.test_client()
    assert staff_login(client, "admin@clinic.test").status_code == 302
    path = f"/admin/services/edit/?id={service.id}"
    html = client.get(path).get_data(as_text=True)
    assert re.search(r">\s*Question 1\s*<", html) and re.search(r">\s*Question 2\s*<", html)
    assert "New question" in html and ">Add a question</button>" in html and "Questions #1" not in html
    # Without JavaScript, "Add a question" brings the form back with an empty row; its order is left empty.
    data = _form(html)
    data["csrf_token"] = form_csrf(html)
    data["_add_inline"] = "questions"
    html = client.post(path, data=data).get_data(as_text=True)
    assert 'name="questions-2-position"' in html and 'name="questions-2-position" type="number" value=""' in html
    data = _form(html)
    data.update({"csrf_token": form_csrf(html), "questions-2-label": "Any allergies?"})
    saved = client.post(path, data=data)
    assert saved.status_code == 302, saved.get_data(as_text=True)[-2000:]
    assert [(q.label, q.position) for q in Service.objects.get(id=service.id).questions] == [
        ("Where does it hurt?", 1), ("Which side?", 2), ("Any allergies?", 3)]
    assert "Service Physiotherapy saved." in client.get(saved.headers["Location"]).get_data(as_text=True)
