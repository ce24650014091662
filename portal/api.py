"""The patient JSON API under /api (thin: parse with a schema, authorise, call a rule in models/,
answer through a schema). The schemas are in portal.schemas, the plumbing in portal.openapi."""

from flask import after_this_request, current_app, request
from flask_jwt_extended import get_jwt, jwt_required, unset_jwt_cookies

from web.audit import audit
from models.booking.cancellation import cancel
from models.booking.rules import get_patient_appointment, require_clinic
from models.booking import series
from models.accounts import change_patient_password
from models.accounts.users import set_date_of_birth
from models.catalog import bookable_services, current_catalog
from models.catalog.profile import public_profile
from models.booking.lists import appointments_of
from models.documents import utcnow
from portal.auth import (current_patient, issue_tokens, logout_identity, password_throttled,
                         register_patient_counted, registration_allowed, revoke, revoke_cookies, sign_in)
from portal.door import book_for_patient, book_series_for_patient, free_times_json
from portal.openapi import AUTH_ERRORS, Blueprint
from models.payments.fees import cancellation_money
from models.accounts.contact import update_contact
from models.accounts.users import clean_birth_date
from portal.schemas import ClinicSchema  # noqa: I001 (clinic profile, issue 25)
from portal.schemas import (AppointmentSchema, BookingBody, CancelledSchema, LoginBody, MeChangeBody, PasswordChangeBody,
                            PasswordChangedSchema,
                            PatientSchema, ProviderSchema, ProvidersQuery, RefreshedSchema, RegisterBody,
                            ServiceSchema, SignedOutSchema, SlotSchema, SlotsQuery, appointment_view)
from portal.schemas import SeriesBookedSchema, cancel_scope, series_view  # recurring series (issue 28)

bp = Blueprint("api", __name__, url_prefix="/api", description="The patient API")


def _with_tokens(patient, **kwargs):
    """Set the session's cookies on the answer this request sends."""
    after_this_request(lambda response: issue_tokens(response, patient, **kwargs))


@bp.route("/auth/register", methods=["POST"])
@bp.errors(400, 409, 413, 415, 429, 503)
@bp.arguments(RegisterBody)
@bp.response(201, PatientSchema)
def register(body):
    """Create a patient account (201)."""
    registration_allowed()
    patient = register_patient_counted(body["email"], body["password"], body["name"], body.get("phone"),
                                       date_of_birth=body.get("date_of_birth"))
    return patient


@bp.route("/auth/login", methods=["POST"])
@bp.errors(400, 401, 413, 415, 429, 503)
@bp.arguments(LoginBody)
@bp.response(200, PatientSchema)
def login(body):
    """Sign in: set the access, refresh and CSRF cookies."""
    patient = sign_in(body["email"], body["password"])
    _with_tokens(patient)
    return patient


@bp.route("/auth/refresh", methods=["POST"])
@bp.errors(*AUTH_ERRORS)
@jwt_required(refresh=True)
@bp.response(200, RefreshedSchema)
def refresh():
    """Issue a new access token inside the session's absolute limit."""
    _with_tokens(current_patient(), sid=get_jwt()["sid"], refresh=False)
    return {"refreshed": True}


@bp.route("/auth/logout", methods=["POST"])
@bp.errors(*AUTH_ERRORS)
@bp.response(200, SignedOutSchema)
def logout():
    """Revoke this session's tokens on the server (even once the access token expired) and clear the cookies."""
    _patient, payload = logout_identity()
    revoke(payload)
    revoke_cookies()
    audit(f"patient:{payload['sub']}", "patient.logout", record=f"Patient:{payload['sub']}")
    after_this_request(lambda response: unset_jwt_cookies(response) or response)
    return {"signed_out": True}


@bp.route("/auth/password", methods=["POST"])
@bp.errors(*AUTH_ERRORS)
@jwt_required()
@bp.arguments(PasswordChangeBody)
@bp.response(200, PasswordChangedSchema)
def change_password(body):
    """Change the password; every other session's tokens stop working."""
    patient = current_patient()
    # The action audits itself, done or refused (the throttle's refusal included).
    change_patient_password(patient, body["current_password"], body["new_password"],
                            audit_as=f"patient:{patient.id}", guard=password_throttled(patient, "current_password"))
    revoke(get_jwt())
    # This browser stays signed in with tokens of the new generation.
    _with_tokens(patient)
    return {"changed": True}


@bp.route("/me")
@bp.errors(401, 503)
@jwt_required()
@bp.response(200, PatientSchema)
def me():
    """The signed-in patient."""
    return current_patient()


@bp.route("/me", methods=["PATCH"])
@bp.errors(*AUTH_ERRORS)
@jwt_required()
@bp.arguments(MeChangeBody)
@bp.response(200, PatientSchema)
def update_me(body):
    """Change the phone (stored E.164), `contact_by` and `date_of_birth` (null clears it); 422 names a bad field."""
    patient = current_patient()
    if "date_of_birth" in body:
        clean_birth_date(body["date_of_birth"])  # checked before anything is written
    contact = {k: body[k] for k in ("phone", "contact_by") if k in body}
    if contact:
        patient = update_contact(patient, **contact, audit_as=f"patient:{patient.id}")
    if "date_of_birth" in body:
        set_date_of_birth(patient, body["date_of_birth"], audit_as=f"patient:{patient.id}")
    return patient


@bp.route("/services")
@bp.errors(503)
@bp.response(200, ServiceSchema(many=True))
def list_services():
    """List the bookable services: the same ones the booking page offers."""
    return bookable_services(current_catalog())


@bp.route("/providers")
@bp.errors(503)
@bp.arguments(ProvidersQuery, location="query")
@bp.response(200, ProviderSchema(many=True))
def list_providers(query):
    """List providers, optionally only those offering one service."""
    service_id = query.get("service")
    providers = sorted(current_catalog().providers.values(), key=lambda p: p.name)
    if service_id:
        providers = [p for p in providers if service_id in {str(getattr(s, "id", s)) for s in p.services}]
    return providers


@bp.route("/clinic")
@bp.errors(404, 503)
@bp.response(200, ClinicSchema)
def show_clinic():
    """The clinic's public profile (name, address, phone, brand, logo) and its closures ahead."""
    return public_profile(current_catalog(), utcnow())


# --- Availability and booking -------------------------------------------------------------

@bp.route("/slots")
@bp.answers_itself  # a cached answer is one Redis read: no wrapper to pass it through (issue 30)
@bp.errors(404, 503)
@bp.arguments(SlotsQuery, location="query")
@bp.response(200, SlotSchema(many=True))
def list_slots(query):
    """Free times of a service, for one provider or all who offer it, sorted by start."""
    # The domain writes this answer's JSON text itself (cached in parts), in SlotSchema's shape.
    body = free_times_json(query["service"], query.get("provider"), query.get("from_"), query["days"], utcnow())
    return current_app.response_class(body, mimetype="application/json")


@bp.route("/appointments", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 413, 415, 429, 503)
@jwt_required()
@bp.arguments(BookingBody)
@bp.response(201, AppointmentSchema)
# Issue 28: with `repeat` the 201 is a booked series (SeriesBookedSchema), so the document names both shapes.
@bp.doc(responses={"201": {"description": "Booked: one appointment, or with `repeat` the whole series "
                                          "(`{series, appointments}`)",
                           "content": {"application/json": {"schema": {"oneOf": [AppointmentSchema,
                                                                                 SeriesBookedSchema]}}}}})
def create_appointment(body):
    """Book a time for the signed-in patient (201; 409 when taken; 422 when not bookable).

    With `repeat` it books a whole series or nothing: 201 `{series, appointments}` (SeriesBookedSchema),
    or 409 `series_unavailable` naming the dates not free and their nearest free times. `repeat.pay:
    "course"` has the whole course paid at once (`series.amount_due`; pay from any visit's payment).
    """
    patient = current_patient()
    if body.get("repeat"):
        return _series_booked(patient, body)
    appt = book_for_patient(patient, body["service"], body["provider"], body["start"],
                            answers=body.get("answers"), for_=body.get("for_"),
                            agree_policy=body.get("agree_policy", False))
    return appointment_view(appt, require_clinic())


def _series_booked(patient, body):
    """The 201 answer of a booked series (its own schema: the route's documents one appointment)."""
    series_id, visits = book_series_for_patient(patient, body["service"], body["provider"], body["start"],
                                                body["repeat"], answers=body.get("answers"), for_=body.get("for_"),
                                                agree_policy=body.get("agree_policy", False))
    view = series_view(series_id, body["repeat"]["every_weeks"], visits, require_clinic())
    return current_app.response_class(SeriesBookedSchema().dumps(view), status=201, mimetype="application/json")


@bp.route("/appointments")
@bp.errors(401, 503)
@jwt_required()
@bp.response(200, AppointmentSchema(many=True))
def list_appointments():
    """The signed-in patient's appointments (and their dependants'), soonest first: the dashboard's
    lists (`models.booking.lists.appointments_of`) in one. An open waitlist offer is not listed
    until accepted (it is an entry's `offer` in `GET /api/waitlist`), so the API never shows the
    `offered` status: the contract's statuses stay as they were."""
    patient = current_patient()
    clinic = require_clinic()
    now = utcnow()
    listed = appointments_of(patient, now).everything()
    audit(f"patient:{patient.id}", "appointment.list", record=f"Patient:{patient.id}")
    return [appointment_view(a, clinic, now=now) for a, _status in listed]


@bp.route("/appointments/<appointment_id>")
@bp.errors(401, 404, 503)
@jwt_required()
@bp.response(200, AppointmentSchema)
def show_appointment(appointment_id):
    """One of the patient's own appointments (404 for anyone else's)."""
    patient = current_patient()
    appt = get_patient_appointment(patient, appointment_id)
    audit(f"patient:{patient.id}", "appointment.read", record=f"Appointment:{appt.id}")
    return appointment_view(appt, require_clinic())


@bp.route("/appointments/<appointment_id>/cancel", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 503)
@jwt_required()
@bp.response(200, CancelledSchema)
def cancel_appointment(appointment_id):
    """Cancel within the service's policy (409 inside the cancellation window unless a late fee
    applies); answers the appointment with `refund` and `fee` (a late fee charged to the card)."""
    patient = current_patient()
    scope = cancel_scope(request.get_json(silent=True))
    appt = get_patient_appointment(patient, appointment_id)
    actor = f"patient:{patient.id}"
    if scope == "following":  # this visit and the later ones of its series (issue 28); each audits itself
        series.cancel_following(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)
    else:
        cancel(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)  # audits itself
    return {**appointment_view(appt, require_clinic()), **cancellation_money(appt)}
