"""The API's schemas: one set validates input, shapes answers and is the OpenAPI document."""

import pytest

from tests.support.factories import api_login, csrf_header, make_clinic, make_patient, make_provider, make_service


@pytest.fixture
def document(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        section, kind, name = node["$ref"].lstrip("#/").split("/")
        node = doc[section][kind][name]
    return node


def _bare_objects(doc, schema, where, seen=None):
    """Every place under `schema` that is an object without its fields declared."""
    seen = set() if seen is None else seen
    if isinstance(schema, dict) and "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen = seen | {schema["$ref"]}
    schema = _resolve(doc, schema)
    found = []
    extra = schema.get("additionalProperties")
    declared = schema.get("properties") or schema.get("allOf") or (isinstance(extra, dict) and extra)
    if schema.get("type") == "object" and not declared:
        found.append(where)
    for name, sub in (schema.get("properties") or {}).items():
        found += _bare_objects(doc, sub, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _bare_objects(doc, schema[key], f"{where}[{key}]", seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for n, sub in enumerate(schema.get(key) or []):
            found += _bare_objects(doc, sub, f"{where}.{key}{n}", seen)
    return found


def test_every_json_answer_declares_its_fields(document):
    bare, answers = [], 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                content = _resolve(document, response).get("content", {})
                for media in content.values():
                    answers += 1
                    bare += _bare_objects(document, media["schema"], f"{method.upper()} {path} {status}")
    assert answers > 50
    assert not bare, bare


def test_the_document_names_the_data_rights_and_the_payment_fields(document):
    paths, schemas = document["paths"], document["components"]["schemas"]
    assert "get" in paths["/api/me/export"] and "post" in paths["/api/me/delete"]
    assert "password" in schemas["DeleteBody"]["properties"]
    export = _resolve(document, paths["/api/me/export"]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"patient", "appointments", "payments", "audit_events"} <= set(export["properties"])
    assert "intent_status" in schemas["PaymentConfirm"]["properties"]
    assert {"refunds", "amount_refunded"} <= set(schemas["PaymentState"]["properties"])
    assert "provider_name" in schemas["Slot"]["properties"]
    # The document keeps its shape: OpenAPI 3.0.3, the contract's error schema, cookie auth.
    assert document["openapi"] == "3.0.3"
    assert schemas["Error"]["required"] == ["error"]
    assert "cookieAuth" in document["components"]["securitySchemes"]


def test_a_schema_refusal_answers_in_the_contract_shape(client):
    missing = client.post("/api/auth/register", json={"email": "a@example.com", "name": "A", "extra": 1})
    assert missing.status_code == 422
    error = missing.get_json()["error"]
    assert error["code"] == "invalid" and error["fields"] == {"password": "required"}
    assert error["message"] == "Missing field(s): password."
    wrong = client.post("/api/auth/register", json={"email": "a@example.com", "name": "A", "password": 5})
    assert wrong.status_code == 422 and wrong.get_json()["error"]["fields"] == {"password": "must be a string"}
    assert client.post("/api/auth/login", json=[1]).get_json()["error"]["code"] == "malformed_json"
    slots = client.get("/api/slots?service=nope&days=0").get_json()["error"]
    assert set(slots["fields"]) == {"service", "days"} and "'days' must be a whole number" in slots["message"]


def test_answers_are_dumped_through_their_schemas(app, client, document):
    make_clinic()
    service = make_service("Check-up", price=0)
    make_provider([service], name="Dr Schema")
    make_patient()
    assert api_login(client).status_code == 200
    schemas = document["components"]["schemas"]
    me = client.get("/api/me").get_json()
    assert set(me) <= set(schemas["Patient"]["properties"]) and set(schemas["Patient"]["required"]) <= set(me)
    [listed] = client.get("/api/services").get_json()
    assert set(listed) == set(schemas["Service"]["properties"])
    slot = client.get("/api/slots", query_string={"service": listed["id"], "days": 14}).get_json()[0]
    assert set(slot) == set(schemas["Slot"]["properties"])
    booked = client.post("/api/appointments", headers=csrf_header(client),
                         json={"service": listed["id"], "provider": slot["provider"], "start": slot["start"]})
    assert booked.status_code == 201
    assert set(booked.get_json()) == set(schemas["Appointment"]["properties"])
    exported = client.get("/api/me/export").get_json()
    assert set(exported) == set(schemas["Export"]["properties"])
    # Export keeps every stored field, not only those its schema names.
    assert {"block_start", "booked_by"} <= set(exported["appointments"][0])
    assert "password_hash" not in exported["patient"]
