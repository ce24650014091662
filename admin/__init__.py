"""The back office: Flask-Admin over the MongoEngine models, guarded by staff role."""

from flask import redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from clinic.extensions import login_manager
from models.documents import StaffUser


@login_manager.user_loader
def load_staff(session_id):
    """Load the staff user whose session id ("<id>:<version>") is still current."""
    staff_id, _, version = (session_id or "").partition(":")
    if len(staff_id) != 24 or not version.isdigit():
        return None
    user = StaffUser.objects(id=staff_id, active=True).first()
    if user is None or str(user.session_version) != version:
        return None
    return user


class StaffAccessMixin:
    """Server-side role check shared by every back-office view."""

    allowed_roles = ("admin", "reception", "provider")

    def is_accessible(self):
        return bool(current_user.is_authenticated and current_user.is_active
                    and current_user.role in self.allowed_roles)

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            from werkzeug.exceptions import Forbidden

            raise Forbidden("Your role does not give access to this page.")
        return redirect(url_for("staff_auth.login", next=request.full_path))


class ClinicIndexView(StaffAccessMixin, AdminIndexView):
    """The back office's home page."""

    @expose("/")
    def index(self):
        if not self.is_accessible():
            return self.inaccessible_callback("index")
        return super().index()


def init_admin(app):
    """Build the Admin for this app and register the staff sign-in pages."""
    from admin import auth

    app.register_blueprint(auth.bp)
    admin = Admin(app, name="Clinic back office", index_view=ClinicIndexView(url="/admin"),
                  theme=Bootstrap4Theme())
    app.extensions["clinic_admin"] = admin
    return admin
