"""The patient portal's server-rendered pages."""

from flask import Blueprint, render_template

from models.documents import Clinic, Service

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
def dashboard():
    """The portal's home page."""
    clinic = Clinic.get()
    services = Service.objects(active=True).order_by("name")
    return render_template("portal/dashboard.html", clinic=clinic, services=services)
