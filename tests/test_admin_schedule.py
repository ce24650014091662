"""The schedule editor: seven weekday rows with breaks, date overrides, errors on the field, and
rows added or removed without JavaScript (plain form posts)."""

from datetime import date

import pytest

from models import Schedule
from tests.support.factories import form_csrf, staff_login


@pytest.fixture
def setup(app, clinic_world):
    return clinic_world(
        services={"consult": dict(name="Consultation")},
        providers={"provider": dict(name="Dr Blank", email="blank@clinic.test", schedule=False),
                   "other": dict(name="Dr Busy")},
        staff=["admin"], provider_staff="provider")


def week_form(token, provider_id=None, **changes):
    """A posted editor: Monday to Friday 09:00-17:00 with a lunch break on Monday; no overrides."""
    data = {"csrf_token": token, "save": "1"}
    if provider_id:
        data["provider"] = str(provider_id)
    for day in range(7):
        data[f"days-{day}-start"] = "09:00" if day < 5 else ""
        data[f"days-{day}-end"] = "17:00" if day < 5 else ""
        if day < 5:
            data[f"days-{day}-open"] = "y"
    data["days-0-breaks-0-start"] = "12:00"
    data["days-0-breaks-0-end"] = "13:00"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_creates_weekly_hours_with_breaks_and_overrides(app, setup, staff_client):
    client = staff_client("admin")
    page = client.get(f"/admin/schedules/new/?provider={setup['provider'].id}").get_data(as_text=True)
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        assert f"<legend>{day}</legend>" in page
    assert "Europe/London" in page
    assert 'type="time"' in page
    data = week_form(form_csrf(page), setup["provider"].id, **{
        "overrides-0-date": "2027-12-24", "overrides-0-closed": "y",
        "overrides-1-date": "2027-12-23", "overrides-1-start": "10:00", "overrides-1-end": "12:00"})
    resp = client.post("/admin/schedules/new/", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    schedule = Schedule.objects.get(provider=setup["provider"].id)
    assert [(d.weekday, d.start, d.end) for d in schedule.days] == [(d, "09:00", "17:00") for d in range(5)]
    assert [(b.start, b.end) for b in schedule.days[0].breaks] == [("12:00", "13:00")]
    assert [(o.date, o.intervals) for o in schedule.overrides] == [
        (date(2027, 12, 23), [["10:00", "12:00"]]), (date(2027, 12, 24), [])]
    listing = client.get("/admin/schedules/").get_data(as_text=True)
    assert "Mon 09:00–17:00 (breaks 12:00–13:00)" in listing
    # The edit form shows what was saved.
    edit = client.get(f"/admin/schedules/edit/?id={schedule.id}").get_data(as_text=True)
    assert 'value="12:00"' in edit and 'value="2027-12-24"' in edit


@pytest.mark.parametrize("changes,message", [
    ({"days-0-end": "08:00"}, "The closing time must be after the opening time (09:00)."),
    ({"days-0-breaks-0-start": "18:00", "days-0-breaks-0-end": "18:30"},
     "A break must lie within the working hours (09:00–17:00)."),
    ({"days-1-start": ""}, "Enter the opening time."),
    ({"days-2-start": "9am"}, "Enter a time like 09:00."),
    ({"overrides-0-start": "10:00", "overrides-0-end": "11:00"}, "Enter the date, like 2027-12-24."),
])
def test_mistakes_are_shown_on_the_field_and_nothing_is_saved(app, setup, staff_client, changes, message):
    client = staff_client("admin")
    token = form_csrf(client.get("/admin/schedules/new/").get_data(as_text=True))
    resp = client.post("/admin/schedules/new/", data=week_form(token, setup["provider"].id, **changes))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert message in page
    assert 'aria-invalid="true"' in page
    assert Schedule.objects(provider=setup["provider"].id).count() == 0


def test_rows_are_added_and_removed_without_javascript(app, setup, staff_client):
    client = staff_client("admin")
    token = form_csrf(client.get("/admin/schedules/new/").get_data(as_text=True))
    data = {k: v for k, v in week_form(token, setup["provider"].id).items() if k != "save"}
    added = client.post("/admin/schedules/new/", data=dict(data, add_break="2"))
    page = added.get_data(as_text=True)
    assert added.status_code == 200 and 'name="days-2-breaks-0-start"' in page
    assert Schedule.objects.count() == 1  # only Dr Busy's; nothing saved by adding a row
    removed = client.post("/admin/schedules/new/", data=dict(data, remove_break="0-0")).get_data(as_text=True)
    assert 'name="days-0-breaks-0-start"' not in removed
    override = client.post("/admin/schedules/new/", data=dict(data, add_override="1")).get_data(as_text=True)
    assert 'name="overrides-0-date"' in override


def test_a_provider_with_a_schedule_is_refused_on_the_field(app, setup, staff_client):
    client = staff_client("admin")
    token = form_csrf(client.get("/admin/schedules/new/").get_data(as_text=True))
    resp = client.post("/admin/schedules/new/", data=week_form(token, setup["other"].id))
    assert "Dr Busy already has a schedule: edit that one instead." in resp.get_data(as_text=True)
    assert Schedule.objects(provider=setup["other"].id).count() == 1


def test_provider_staff_edit_only_their_own_hours(app, setup):
    client = app.test_client()
    assert staff_login(client, "provider@clinic.test").status_code == 302
    page = client.get("/admin/schedules/new/").get_data(as_text=True)
    assert 'name="provider"' not in page
    resp = client.post("/admin/schedules/new/", data=week_form(form_csrf(page), setup["other"].id))
    assert resp.status_code == 302
    mine = Schedule.objects.get(provider=setup["provider"].id)
    assert len(mine.days) == 5
    theirs = Schedule.objects.get(provider=setup["other"].id)
    assert client.get(f"/admin/schedules/edit/?id={theirs.id}").status_code == 302
    # Opening "new" again leads to their existing schedule.
    again = client.get("/admin/schedules/new/")
    assert again.status_code == 302 and str(mine.id) in again.headers["Location"]
