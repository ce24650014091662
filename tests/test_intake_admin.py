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


def test_reception_cannot_change_questions(app, world):
    client = app.test_client()
    assert staff_login(client, "reception@clinic.test").status_code == 302
    path = f"/admin/services/edit/?id={world['physio'].id}"
    assert client.get(path).status_code in (302, 403)
