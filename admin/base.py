"""What every back-office view shares: the staff user loader, role checks, audit, bulk loading."""

from flask import abort, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.form import SecureForm
from flask_login import current_user
from markupsafe import Markup

from clinic.audit import audit
from clinic.extensions import login_manager
from models.booking import human_time
from models.documents import Clinic, StaffUser

# Leading characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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


def staff_role():
    """The signed-in staff user's role, or None."""
    if current_user.is_authenticated and current_user.is_active:
        return current_user.role
    return None


def staff_actor():
    """The audit actor for the signed-in staff user."""
    return f"staff:{current_user.id}"


def clinic_zone():
    """The clinic's IANA zone, read once per request."""
    if "clinic_tz" not in g:
        clinic = Clinic.get()
        g.clinic_tz = clinic.timezone if clinic else "UTC"
    return g.clinic_tz


def local_formatter(field):
    """A column formatter showing an instant in the clinic's zone, with the zone named."""

    def formatter(view, context, model, name):
        value = getattr(model, field)
        return human_time(value, clinic_zone()) if value else ""

    return formatter


def neutralise_cell(value):
    """Stop a spreadsheet from running a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class StaffAccessMixin:
    """Server-side role check shared by every back-office view."""

    read_roles = ("admin", "reception", "provider")

    def is_accessible(self):
        return staff_role() in self.read_roles

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403, "Your role does not give access to this page.")
        return redirect(url_for("staff_auth.login", next=request.full_path))


class ClinicSecureForm(SecureForm):
    """SecureForm whose `hidden_tag` renders only its own token.

    Without it Flask-Admin's templates also add Flask-WTF's token under the same name, and the
    browser would post that one first.
    """

    def hidden_tag(self, *fields):
        """The form's hidden fields (its CSRF token among them)."""
        # Each field renders itself escaped (Markup); joining on Markup keeps that.
        return Markup("").join(f() for f in self if getattr(f.widget, "input_type", None) == "hidden")


class SecureModelView(StaffAccessMixin, ModelView):
    """A model view checked by role on every endpoint (list, details, forms, actions, export, ajax)."""

    form_base_class = ClinicSecureForm
    can_delete = False  # nothing clinical or financial is ever deleted
    can_view_details = True
    page_size = 25
    write_roles = ("admin",)
    allow_create = True
    allow_edit = True
    export_roles = ()
    # Views showing patient data write an AuditEvent on every list and detail read.
    audit_reads = False
    # Field naming the provider a record belongs to; the provider role sees only its own.
    provider_field = None

    @property
    def can_create(self):
        return self.allow_create and staff_role() in self.write_roles

    @property
    def can_edit(self):
        return self.allow_edit and staff_role() in self.write_roles

    @property
    def can_export(self):
        return staff_role() in self.export_roles

    def _scoped(self, query):
        if self.provider_field and staff_role() == "provider":
            provider = current_user.provider
            if provider is None:
                return query.none()
            return query.filter(**{self.provider_field: provider.id})
        return query

    def get_query(self):
        """Provider staff see only their own records."""
        return self._scoped(super().get_query())

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Load referenced documents in bulk: one query per referenced collection, not per row."""
        count, query = super().get_list(page, sort_column, sort_desc, search, filters, execute=False,
                                        page_size=page_size)
        if not execute:
            return count, query
        rows = query.select_related(max_depth=1)
        self.after_list_loaded(rows)
        return count, rows

    def after_list_loaded(self, rows):
        """Hook for views that attach more data to a page of rows in bulk."""

    def _without_provider_choice(self, form):
        """Provider staff do not choose the provider: it is always themselves."""
        if self.provider_field and staff_role() == "provider" and hasattr(form, self.provider_field):
            delattr(form, self.provider_field)
        return form

    def create_form(self, obj=None):
        return self._without_provider_choice(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._without_provider_choice(super().edit_form(obj))

    def on_model_change(self, form, model, is_created):
        """Provider staff can only write records of their own provider."""
        if self.provider_field and staff_role() == "provider":
            setattr(model, self.provider_field, current_user.provider)
        return super().on_model_change(form, model, is_created)

    def is_action_allowed(self, name):
        return staff_role() in getattr(self, "action_roles", {}).get(name, ()) and super().is_action_allowed(name)

    def get_export_value(self, model, name):
        value = super().get_export_value(model, name)
        if value is not None and not isinstance(value, (str, int, float)):
            value = str(value)  # referenced documents export as their text
        return neutralise_cell(value)

    @expose("/ajax/update/", methods=("POST",))
    def ajax_update(self):
        """Inline edits obey the same write rule as the edit form (Flask-Admin #2129)."""
        if not self.can_edit:
            abort(403, "Your role cannot change these records.")
        return super().ajax_update()

    @expose("/")
    def index_view(self):
        if self.audit_reads:
            audit(staff_actor(), f"{self.model.__name__}.list", record=self.model.__name__)
        return super().index_view()

    @expose("/details/")
    def details_view(self):
        if self.audit_reads:
            audit(staff_actor(), f"{self.model.__name__}.read",
                  record=f"{self.model.__name__}:{request.args.get('id', '')[:24]}")
        return super().details_view()
