"""The patient JSON API under /api (thin: parse with a schema, authorise, call a rule in models/,
answer through a schema). The schemas are in portal.schemas, the plumbing in portal.openapi."""

from flask import after_this_request, current_app, request
from flask_jwt_extended import get_jwt, jwt_required, unset_jwt_cookies

from clinic.audit import audit
from models import booking
from models.booking import series
from models.accounts import change_patient_password
from models.accounts.users import set_date_of_birth
from models.catalog import bookable_services, current_catalog
from models.accounts.dependants import dependants_of, household_ids
from models.catalog.profile import public_profile
from models.documents import Appointment, Patient, Provider, Service, utcnow
from portal.auth import (current_patient, issue_tokens, logout_identity, password_throttled,
                         register_patient_counted, registration_allowed, revoke, revoke_cookies, sign_in)
from portal.door import book_for_patient, book_series_for_patient, free_times_json
from portal.openapi import AUTH_ERRORS, Blueprint
from models import payments
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
    audit(f"patient:{patient.id}", "patient.register", record=f"Patient:{patient.id}")
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
def create_appointment(body):
    """Book a time for the signed-in patient (201; 409 when taken; 422 when not bookable).

    With `repeat` it books a whole series or nothing: 201 `{series, appointments}` (SeriesBookedSchema),
    or 409 `series_unavailable` naming the dates not free and their nearest free times.
    """
    patient = current_patient()
    if body.get("repeat"):
        return _series_booked(patient, body)
    appt = book_for_patient(patient, body["service"], body["provider"], body["start"],
                            answers=body.get("answers"), for_=body.get("for_"),
                            agree_policy=body.get("agree_policy", False))
    return appointment_view(appt, booking.require_clinic())


def _series_booked(patient, body):
    """The 201 answer of a booked series (its own schema: the route's documents one appointment)."""
    series_id, visits = book_series_for_patient(patient, body["service"], body["provider"], body["start"],
                                                body["repeat"], answers=body.get("answers"), for_=body.get("for_"),
                                                agree_policy=body.get("agree_policy", False))
    view = series_view(series_id, body["repeat"]["every_weeks"], visits, booking.require_clinic())
    return current_app.response_class(SeriesBookedSchema().dumps(view), status=201, mimetype="application/json")


@bp.route("/appointments")
@bp.errors(401, 503)
@jwt_required()
@bp.response(200, AppointmentSchema(many=True))
def list_appointments():
    """The signed-in patient's appointments, soonest first."""
    patient = current_patient()
    clinic = booking.require_clinic()
    # A waitlist offer (models/booking/waitlist.py) becomes the patient's appointment only once accepted.
    # The account's: the patient's own and their dependants' (issue 28), each naming who it is for.
    people = {patient.id: patient, **{d.id: d for d in dependants_of(patient)}}
    appts = list(Appointment.objects(patient__in=household_ids(patient), booked_by__ne="waitlist-offer")
                 .order_by("start").no_dereference())
    services = {s.id: s for s in Service.objects(id__in={a.service.id for a in appts})}
    providers = {p.id: p for p in Provider.objects(id__in={a.provider.id for a in appts})}
    missing = {a.patient.id for a in appts} - set(people)
    people.update({p.id: p for p in Patient.objects(id__in=list(missing)).only("id", "name")} if missing else {})
    audit(f"patient:{patient.id}", "appointment.list", record=f"Patient:{patient.id}")
    now = utcnow()
    return [appointment_view(a, clinic, services, providers, now, people) for a in appts]


@bp.route("/appointments/<appointment_id>")
@bp.errors(401, 404, 503)
@jwt_required()
@bp.response(200, AppointmentSchema)
def show_appointment(appointment_id):
    """One of the patient's own appointments (404 for anyone else's)."""
    patient = current_patient()
    appt = booking.get_patient_appointment(patient, appointment_id)
    audit(f"patient:{patient.id}", "appointment.read", record=f"Appointment:{appt.id}")
    return appointment_view(appt, booking.require_clinic())


@bp.route("/appointments/<appointment_id>/cancel", methods=["POST"])
@bp.errors(400, 401, 403, 404, 409, 503)
@jwt_required()
@bp.response(200, CancelledSchema)
def cancel_appointment(appointment_id):
    """Cancel within the service's policy (409 inside the cancellation window unless a late fee
    applies); answers the appointment with `refund` and `fee` (a late fee charged to the card)."""
    patient = current_patient()
    scope = cancel_scope(request.get_json(silent=True))
    appt = booking.get_patient_appointment(patient, appointment_id)
    actor = f"patient:{patient.id}"
    if scope == "following":  # this visit and the later ones of its series (issue 28); each audits itself
        series.cancel_following(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)
    else:
        booking.cancel(appt, utcnow(), reason="cancelled by patient", actor=actor, audit_as=actor)  # audits itself
    return {**appointment_view(appt, booking.require_clinic()), **payments.cancellation_money(appt)}
