"""The patient JSON API under /api (thin: parse, authorise, call a rule in models/, answer)."""

from flask import Blueprint, jsonify, request

from models.documents import Provider, Service
from models.errors import ValidationFailed

bp = Blueprint("api", __name__, url_prefix="/api")


def object_id_arg(name, required=False):
    """Read an ObjectId-shaped query argument, refusing anything else."""
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"The '{name}' parameter is required.", fields={name: "required"})
        return None
    if len(value) != 24 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise ValidationFailed(f"'{name}' is not a valid id.", fields={name: "invalid id"})
    return value


def service_json(service):
    """The public shape of a service."""
    return {"id": str(service.id), "name": service.name, "duration_minutes": service.duration_minutes,
            "price": service.price, "currency": service.currency}


@bp.get("/services")
def list_services():
    """List the bookable services."""
    return jsonify([service_json(s) for s in Service.objects(active=True).order_by("name")])


@bp.get("/providers")
def list_providers():
    """List providers, optionally only those offering one service."""
    service_id = object_id_arg("service")
    query = Provider.objects(active=True)
    if service_id:
        query = query.filter(services=service_id)
    providers = query.order_by("name").no_dereference()
    return jsonify([{"id": str(p.id), "name": p.name, "services": [str(s.id) for s in p.services]}
                    for p in providers])
