"""Merging duplicate patient records in the back office (issue 26; admin role only).

From a patient's page an admin finds the duplicate, reads what will move, and confirms; the domain's
one action (`models.merge.merge_patients`) moves everything and audits itself.
"""

from bson import ObjectId
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose

from admin.base import clinic_zone, staff_actor, staff_role
from admin.roles import ADMIN_ONLY
from web.audit import audit
from web.errors import status_of
from models.booking.frontdesk import find_patients, patient_cards
from models.clock import utcnow
from models.documents import Patient
from models.errors import DomainError
from models.merge import merge_patients, merge_preview


def _patient(raw):
    return Patient.objects(id=raw).first() if ObjectId.is_valid(raw or "") else None


class PatientMergeMixin:
    """The merge pages of the patients view: find the duplicate, review what moves, merge."""

    @expose("/merge/", methods=("GET", "POST"))
    def merge_view(self):
        """Find the duplicate of a patient, review what would move, and merge it (admin only)."""
        if staff_role() not in ADMIN_ONLY:
            abort(403, "Only an administrator can merge patient records.")
        keep = _patient(request.values.get("id", ""))
        if keep is None:
            abort(404, "That patient does not exist.")
        now = utcnow()
        duplicate = _patient(request.values.get("duplicate", ""))
        error, status = None, 200
        if request.method == "POST" and duplicate is not None and request.form.get("confirm") == "yes":
            try:
                done = merge_patients(keep, duplicate, now, audit_as=staff_actor())
            except DomainError as exc:
                error, status = exc.message, status_of(exc)
            else:
                flash(merged_words(done), "success")
                return redirect(url_for(".details_view", id=str(keep.id)))
        query = request.values.get("q", "").strip()[:100]
        found = [p for p in find_patients(query) if p.id != keep.id] if query else []
        if query:
            audit(staff_actor(), "Patient.search", record="Patient", outcome=f"found:{len(found)}")
        preview = None
        # Reading two patients' details is a read of patient data: audited like the patient's page.
        audit(staff_actor(), "Patient.merge_view", record=f"Patient:{keep.id}",
              outcome=f"duplicate:{duplicate.id}" if duplicate is not None else "ok")
        if duplicate is not None and error is None:
            try:  # what will move, by the merge's own rules (a merge they refuse is refused here too)
                preview = merge_preview(keep, duplicate)
            except DomainError as exc:
                error, status, duplicate = exc.message, status_of(exc), None
        from zoneinfo import ZoneInfo

        return self.render("admin_clinic/patient_merge.html", keep=keep, keep_card=patient_cards([keep], now)[0],
                           duplicate=duplicate, dup_card=patient_cards([duplicate], now)[0] if duplicate else None,
                           cards=patient_cards(found, now), query=query, preview=preview, error=error,
                           zone=ZoneInfo(clinic_zone())), status


def merged_words(done):
    """The message after a merge: what moved, the people now booked for, and what became of the saved cards."""
    name = done.patient.name
    words = [f"Merged the duplicate record into {name}: its appointments, payments, waitlist entries and "
             "messages are now on this record."]
    if done.dependants:
        words.append(f"{name} now books for {', '.join(done.dependants)}.")
    words.append(done.card_sentence(done=True))
    return " ".join(word for word in words if word)
