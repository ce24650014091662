"""The OpenAPI 3.0 description of the patient API and the Stripe webhook, served at /api/openapi.json."""

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

OBJECT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses):
    """The error answers an operation may give."""
    names = {400: "Malformed request", 401: "Not signed in", 402: "Card declined", 403: "Not allowed (CSRF)",
             404: "Not found or not yours", 409: "Conflict", 413: "Body too large",
             415: "Unsupported media type", 422: "Invalid input", 429: "Throttled",
             503: "A dependency is down"}
    return {str(s): {"description": names[s], "content": {"application/json": {"schema": ERROR}}}
            for s in statuses}


def _json_body(schema, required=True):
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _ok(description, schema, status="200"):
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


APPOINTMENT = {
    "type": "object",
    "required": ["id", "status", "start", "end", "hold_expires_at", "amount", "currency"],
    "properties": {
        "id": OBJECT_ID,
        "status": {"type": "string", "enum": ["held", "confirmed", "checked_in", "completed", "no_show",
                                              "cancelled", "expired"]},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "timezone": {"type": "string"},
        "hold_expires_at": {"type": "string", "format": "date-time", "nullable": True},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string"},
        "service": {"type": "object", "nullable": True},
        "provider": {"type": "object", "nullable": True},
    },
}
APPOINTMENT_ID = {"name": "appointment_id", "in": "path", "required": True, "schema": {"type": "string"}}
PAYMENT_STATE = {"type": "object", "required": ["appointment", "status", "amount", "currency"],
                 "properties": {"appointment": {"type": "string"}, "status": {"type": "string"},
                                "amount": {"type": "integer"}, "currency": {"type": "string"},
                                "amount_refunded": {"type": "integer"}}}
PATIENT = {"type": "object", "required": ["id", "email", "name"],
           "properties": {"id": OBJECT_ID, "email": {"type": "string"}, "name": {"type": "string"},
                          "phone": {"type": "string"}}}
AUTH_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Clinic booking patient API", "version": "1.0.0",
             "description": "Times are ISO 8601 with an offset; money is an integer in minor units "
                            "plus a currency code. Auth is by HttpOnly JWT cookies; state changes send "
                            "the X-CSRF-TOKEN header (the csrf_access_token cookie's value)."},
    "components": {
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "fields": {"type": "object"}}}}},
            "Appointment": APPOINTMENT,
            "Patient": PATIENT,
        },
        "securitySchemes": {"cookieAuth": {"type": "apiKey", "in": "cookie", "name": "__Host-access_token"}},
    },
    "paths": {
        "/api/auth/register": {"post": {
            "summary": "Create a patient",
            "requestBody": _json_body({"type": "object", "required": ["email", "password", "name"],
                                       "properties": {"email": {"type": "string"}, "password": {"type": "string"},
                                                      "name": {"type": "string"}, "phone": {"type": "string"}}}),
            "responses": {**_ok("Created", {"$ref": "#/components/schemas/Patient"}, "201"),
                          **_errors(400, 409, 413, 415, 422, 429, 503)}}},
        "/api/auth/login": {"post": {
            "summary": "Sign in; sets the access, refresh and CSRF cookies",
            "requestBody": _json_body({"type": "object", "required": ["email", "password"],
                                       "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}),
            "responses": {**_ok("Signed in", {"$ref": "#/components/schemas/Patient"}),
                          **_errors(400, 401, 413, 415, 422, 429, 503)}}},
        "/api/auth/refresh": {"post": {
            "summary": "A new access cookie inside the session's absolute limit",
            "responses": {**_ok("Refreshed", {"type": "object"}), **_errors(*AUTH_ERRORS)}}},
        "/api/auth/logout": {"post": {
            "summary": "Revoke this session's tokens",
            "responses": {**_ok("Signed out", {"type": "object"}), **_errors(*AUTH_ERRORS)}}},
        "/api/auth/password": {"post": {
            "summary": "Change the password; other sessions end",
            "requestBody": _json_body({"type": "object", "required": ["current_password", "new_password"],
                                       "properties": {"current_password": {"type": "string"},
                                                      "new_password": {"type": "string"}}}),
            "responses": {**_ok("Changed", {"type": "object"}), **_errors(*AUTH_ERRORS)}}},
        "/api/me": {"get": {
            "summary": "The signed-in patient",
            "responses": {**_ok("The patient", {"$ref": "#/components/schemas/Patient"}),
                          **_errors(401, 503)}}},
        "/api/services": {"get": {
            "summary": "Bookable services",
            "responses": _ok("Services", {"type": "array", "items": {
                "type": "object", "required": ["id", "name", "duration_minutes", "price", "currency"],
                "properties": {"id": OBJECT_ID, "name": {"type": "string"},
                               "duration_minutes": {"type": "integer"}, "price": {"type": "integer"},
                               "currency": {"type": "string"}}}})}},
        "/api/providers": {"get": {
            "summary": "Providers, optionally those offering one service",
            "parameters": [{"name": "service", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {**_ok("Providers", {"type": "array", "items": {
                "type": "object", "required": ["id", "name", "services"],
                "properties": {"id": OBJECT_ID, "name": {"type": "string"},
                               "services": {"type": "array", "items": OBJECT_ID}}}}),
                **_errors(422)}}},
        "/api/slots": {"get": {
            "summary": "Free times, sorted by start",
            "parameters": [
                {"name": "service", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "provider", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "from", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "days", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {**_ok("Free times", {"type": "array", "items": {
                "type": "object", "required": ["provider", "start", "end"],
                "properties": {"provider": OBJECT_ID, "start": {"type": "string", "format": "date-time"},
                               "end": {"type": "string", "format": "date-time"}}}}),
                **_errors(404, 422, 503)}}},
        "/api/appointments": {
            "get": {"summary": "The patient's own appointments",
                    "responses": {**_ok("Appointments", {"type": "array", "items": APPOINTMENT}),
                                  **_errors(401, 503)}},
            "post": {"summary": "Book a time",
                     "requestBody": _json_body({"type": "object", "required": ["service", "provider", "start"],
                                                "properties": {"service": {"type": "string"},
                                                               "provider": {"type": "string"},
                                                               "start": {"type": "string"}}}),
                     "responses": {**_ok("Booked", {"$ref": "#/components/schemas/Appointment"}, "201"),
                                   **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)}}},
        "/api/appointments/{appointment_id}": {"get": {
            "summary": "One of the patient's own appointments",
            "parameters": [{"name": "appointment_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {**_ok("The appointment", {"$ref": "#/components/schemas/Appointment"}),
                          **_errors(401, 404, 503)}}},
        "/api/appointments/{appointment_id}/cancel": {"post": {
            "summary": "Cancel within the service's policy",
            "parameters": [{"name": "appointment_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {**_ok("Cancelled", {"$ref": "#/components/schemas/Appointment"}),
                          **_errors(400, 401, 403, 404, 409, 503)}}},
        "/api/appointments/{appointment_id}/payment": {
            "post": {"summary": "Start paying for a held appointment (elements: client secret; checkout: URL)",
                     "parameters": [APPOINTMENT_ID],
                     "responses": {**_ok("Payment started", {"type": "object", "required": ["flow"], "properties": {
                         "flow": {"type": "string", "enum": ["elements", "checkout"]},
                         "client_secret": {"type": "string"}, "publishable_key": {"type": "string"},
                         "payment_intent": {"type": "string"}, "url": {"type": "string"}}}),
                         **_errors(400, 401, 403, 404, 409, 422, 503)}},
            "get": {"summary": "The payment's state, re-fetched from Stripe while under way",
                    "parameters": [APPOINTMENT_ID],
                    "responses": {**_ok("Payment state", PAYMENT_STATE), **_errors(401, 404, 503)}}},
        "/api/appointments/{appointment_id}/payment/confirm": {"post": {
            "summary": "Confirm the PaymentIntent with a card token from Stripe.js",
            "parameters": [APPOINTMENT_ID],
            "requestBody": _json_body({"type": "object", "required": ["token"],
                                       "properties": {"token": {"type": "string"}}}),
            "responses": {**_ok("Payment status", {"type": "object"}),
                          **_errors(400, 401, 402, 403, 404, 409, 413, 415, 422, 503)}}},
        "/api/appointments/{appointment_id}/payment/sync": {"post": {
            "summary": "Ask the server to re-fetch the payment from Stripe now",
            "parameters": [APPOINTMENT_ID],
            "responses": {**_ok("Payment state", PAYMENT_STATE), **_errors(400, 401, 403, 404, 503)}}},
        "/webhooks/stripe": {"post": {
            "summary": "Stripe events, verified by the Stripe-Signature header",
            "parameters": [{"name": "Stripe-Signature", "in": "header", "required": False,
                            "schema": {"type": "string"}}],
            "requestBody": _json_body({"type": "object"}, required=False),
            "responses": {**_ok("Received", {"type": "object"}), **_errors(400, 413, 503)}}},
        "/healthz": {"get": {"summary": "Process alive", "responses": _ok("Alive", {"type": "object"})}},
        "/readyz": {"get": {"summary": "MongoDB and Redis answer",
                            "responses": {**_ok("Ready", {"type": "object"}), **_errors(503)}}},
    },
}


# Patient self-service (portal/api_selfservice.py): reschedule and the waitlist.
WAITLIST_ENTRY = {
    "type": "object", "required": ["id", "service", "provider", "from", "to", "status", "offer"],
    "properties": {
        "id": OBJECT_ID, "service": {"type": "object"}, "provider": {"type": "object", "nullable": True},
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "timezone": {"type": "string"}, "note": {"type": "string"},
        "status": {"type": "string", "enum": ["waiting", "offered", "booked", "expired"]},
        "offer": {"type": "object", "nullable": True, "required": ["start", "end", "provider", "expires_at"],
                  "properties": {"start": {"type": "string", "format": "date-time"},
                                 "end": {"type": "string", "format": "date-time"},
                                 "provider": {"type": "object"},
                                 "expires_at": {"type": "string", "format": "date-time"}}},
    },
}
ENTRY_ID = {"name": "entry_id", "in": "path", "required": True, "schema": {"type": "string"}}
SPEC["paths"].update({
    "/api/appointments/{appointment_id}/reschedule": {"post": {
        "summary": "Move to another free time of the same service; the payment carries over",
        "parameters": [APPOINTMENT_ID],
        "requestBody": _json_body({"type": "object", "required": ["start"],
                                   "properties": {"start": {"type": "string"}, "provider": {"type": "string"}}}),
        "responses": {**_ok("Moved", {"$ref": "#/components/schemas/Appointment"}),
                      **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)}}},
    "/api/waitlist": {
        "get": {"summary": "The patient's waitlist entries",
                "responses": {**_ok("Entries", {"type": "array", "items": WAITLIST_ENTRY}), **_errors(401, 503)}},
        "post": {"summary": "Join the waitlist for a service (and provider) between two dates in the clinic's zone",
                 "requestBody": _json_body({"type": "object", "required": ["service", "from", "to"],
                                            "properties": {"service": {"type": "string"},
                                                           "provider": {"type": "string"},
                                                           "from": {"type": "string", "format": "date"},
                                                           "to": {"type": "string", "format": "date"}}}),
                 "responses": {**_ok("Joined", WAITLIST_ENTRY, "201"),
                               **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)}}},
    "/api/waitlist/{entry_id}": {"delete": {
        "summary": "Leave the waitlist; an open offer goes to the next patient in line",
        "parameters": [ENTRY_ID],
        "responses": {"204": {"description": "Left"}, **_errors(400, 401, 403, 404, 503)}}},
    "/api/waitlist/{entry_id}/accept": {"post": {
        "summary": "Book the offered time while the offer holds it",
        "parameters": [ENTRY_ID],
        "responses": {**_ok("Booked", {"$ref": "#/components/schemas/Appointment"}, "201"),
                      **_errors(400, 401, 403, 404, 409, 503)}}},
})


@bp.get("/api/openapi.json")
def openapi_document():
    """The OpenAPI document of the patient API and the webhook."""
    return jsonify(SPEC)
