"""The Stripe webhook's schemas and its entry in the OpenAPI document (/api/openapi.json), which
the app factory adds next to the patient API's."""

from marshmallow import INCLUDE, Schema, fields

from web.apidoc import error_refs, json_response, plain_rule


class StripeEventBody(Schema):
    """A Stripe event, as Stripe sends it (verified by the Stripe-Signature header)."""

    class Meta:
        unknown = INCLUDE

    id = fields.String()
    type = fields.String()
    data = fields.Dict()


class WebhookReceivedSchema(Schema):
    """The event is stored (once) and handled, ignored or a duplicate."""

    received = fields.Boolean(required=True)
    duplicate = fields.Boolean()
    handled = fields.Boolean()
    outcome = fields.String(allow_none=True)


def document(spec):
    """Name `POST /webhooks/stripe` in the app's OpenAPI document (`spec`, an apispec APISpec)."""
    spec.path(rule=plain_rule("/webhooks/stripe"), operations={"post": {
        "summary": "Stripe events, verified by the Stripe-Signature header",
        "tags": ["webhooks"],
        "parameters": [{"name": "Stripe-Signature", "in": "header", "required": False,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": False,
                        "content": {"application/json": {"schema": StripeEventBody}}},
        "responses": {"200": json_response(WebhookReceivedSchema, "Received"),
                      **error_refs(400, 409, 413, 503)}}})
