"""What every back-office view shares: the staff user loader, role checks, audit, bulk loading."""

import unicodedata
from datetime import date, datetime

from bson import ObjectId
from flask import abort, flash, g, redirect, request, session, url_for
from flask_admin import expose
from flask_admin.babel import gettext as admin_gettext
from flask_admin.helpers import is_form_submitted
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.contrib.mongoengine.typefmt import DEFAULT_FORMATTERS
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_admin.form import SecureForm
from flask_login import current_user
from markupsafe import Markup
from mongoengine.errors import NotUniqueError
from mongoengine.errors import ValidationError as MongoValidationError
from wtforms.fields import FieldList, FormField

from admin.fields import yes_no
from admin.roles import ADMIN_ONLY, EVERYONE, NOBODY, SEES_MONEY
from web.audit import audit
from web.extensions import login_manager
from models.formatting import human_date, human_time
from models.documents import Clinic, StaffUser
from models.errors import DomainError

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


def type_formatters(defaults):
    """Flask-Admin's formatters by value type, in words for every view: a yes/no setting reads "Yes" or
    "No" (not a bare icon, nor "True"), an instant is local with its zone named, a date is a date in
    words; `defaults` (Flask-Admin's own) for every other type. A column's own formatter comes first."""
    return {**defaults, bool: lambda view, value, name: yes_no(value),
            # datetime before date: a datetime is a date too, and the first match wins.
            datetime: lambda view, value, name: human_time(value, clinic_zone()),
            date: lambda view, value, name: human_date(value)}


def neutralise_cell(value):
    """Stop a spreadsheet from running a cell as a formula (CSV injection)."""
    if not isinstance(value, str):
        return value
    # Spreadsheets skip leading spaces (no-break and zero-width ones too) before reading "=": look
    # past them, as they do.
    head = value.lstrip()
    while head and (head[0].isspace() or unicodedata.category(head[0]) == "Cf"):
        head = head[1:]
    if value.startswith(FORMULA_PREFIXES) or head.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class StaffAccessMixin:
    """Server-side role check shared by every back-office view."""

    read_roles = EVERYONE

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
        # Each field renders itself escaped (Markup); joining on Markup keeps that. Select2 and
        # other non-input widgets have no `input_type`: they are never hidden fields.
        return Markup("").join(f() for f in self if getattr(f.widget, "input_type", None) == "hidden")


class SecureModelView(StaffAccessMixin, ModelView):
    """A model view checked by role on every endpoint (list, details, forms, actions, export, ajax)."""

    form_base_class = ClinicSecureForm
    can_delete = False  # nothing clinical or financial is ever deleted
    can_view_details = True
    page_size = 25
    write_roles = ADMIN_ONLY
    create_roles = None  # who is offered "Create"; None: the write roles
    allow_create = True
    allow_edit = True
    export_roles = NOBODY
    # Views showing patient data write an AuditEvent on every list and detail read.
    audit_reads = False
    # Field naming the provider a record belongs to; the provider role sees only its own.
    provider_field = None
    # What one record is called in messages ("a service named …").
    record_noun = "record"
    # Columns that show money: left out of the list, the details and sorting for the roles that do
    # not see money (admin.roles.SEES_MONEY).
    money_columns = ()
    column_type_formatters = type_formatters(DEFAULT_FORMATTERS)
    column_type_formatters_detail = type_formatters(DETAIL_FORMATTERS)
    # An empty list says what belongs there and how it gets there; the hint about "Create" is shown
    # only to a role offered Create.
    empty_list_message = "Nothing here yet."
    empty_create_hint = ""

    def _visible_columns(self, columns):
        """`columns` ((name, label) pairs) without the money columns when this role may not see money."""
        if not self.money_columns or staff_role() in SEES_MONEY:
            return columns
        return [column for column in columns if column[0] not in self.money_columns]

    def _get_column_by_idx(self, idx):
        # The list's sort links count the columns shown, so a sort index names a shown column.
        columns = self._visible_columns(self._list_columns)
        if idx is None or idx < 0 or idx >= len(columns):
            return None
        return columns[idx]

    def render(self, template, **kwargs):
        """Render, leaving out the columns this role may not see."""
        for key in ("list_columns", "details_columns"):
            if key in kwargs:
                kwargs[key] = self._visible_columns(kwargs[key])
        return super().render(template, **kwargs)

    def get_empty_list_message(self):
        """What an empty list says: why it is empty and what to do next; a search or filter that
        found nothing says so instead."""
        if request.args.get("search") or any(key.startswith("flt") for key in request.args):
            return "Nothing matches this search or filter. Clear it to see everything."
        hint = self.empty_create_hint if self.can_create else ""
        return " ".join(part for part in (self.empty_list_message, hint) if part)

    @property
    def can_create(self):
        roles = self.write_roles if self.create_roles is None else self.create_roles
        return self.allow_create and staff_role() in roles

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

    def get_one(self, id):
        """The record, or None for an id that cannot exist (Flask-Admin then says "Record does not
        exist." instead of showing the database's raw ObjectId error)."""
        if not ObjectId.is_valid(str(id)):
            return None
        return super().get_one(id)

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

    def _handle_view(self, name, **kwargs):
        """Follow `url=` only to a relative /admin/ path; any other target goes to the list.

        Flask-Admin's own check accepts `http:evil.test` (an open redirect).
        """
        response = super()._handle_view(name, **kwargs)
        if response is None and "url" in request.values:
            from admin.auth import is_admin_path

            if not is_admin_path(request.values.get("url")):
                return redirect(self.get_url(".index_view"))
        return response

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

    def scaffold_form(self):
        """Forms use the same labels and help as the lists (`column_labels`, `column_descriptions`)."""
        form_class = super().scaffold_form()
        for name in set(self.column_labels or {}) | set(self.column_descriptions or {}):
            unbound = getattr(form_class, name, None)
            if unbound is None or not hasattr(unbound, "kwargs"):
                continue
            if name in (self.column_labels or {}):
                if unbound.args:
                    unbound.args = (self.column_labels[name],) + tuple(unbound.args[1:])
                else:
                    unbound.kwargs["label"] = self.column_labels[name]
            if name in (self.column_descriptions or {}) and not unbound.kwargs.get("description"):
                unbound.kwargs["description"] = self.column_descriptions[name]
        return form_class

    # Plain words instead of Flask-Admin's defaults and MongoDB's raw errors.

    def search_placeholder(self):
        """Say what the search box searches: "Search name, email or phone"."""
        names = [self.column_labels.get(c, c.replace("_", " ")) if isinstance(c, str) else str(c)
                 for c in (self.column_searchable_list or ())]
        if not names:
            return None
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"Search {listed}"

    def _duplicate_message(self, name, value):
        label = self.column_labels.get(name, name.replace("_", " ")).lower()
        if name == "name":
            return f"A {self.record_noun} named “{value}” already exists."
        return f"Another {self.record_noun} already has this {label} ({value})."

    def _check_unique(self, form):
        """Put a plain-words error on each field whose value another record already has."""
        ok = True
        editing = request.args.get("id", "")
        for name, field in self.model._fields.items():
            if not getattr(field, "unique", False) or name not in form:
                continue
            value = getattr(form, name).data
            if value is None or value == "":
                continue
            lookup = value.strip().lower() if name == "email" and isinstance(value, str) else value
            query = self.model.objects(**{name: getattr(lookup, "id", lookup)})
            if len(editing) == 24:
                query = query.filter(id__ne=editing)
            if query.only("id").first() is not None:
                getattr(form, name).errors.append(self._duplicate_message(name, value))
                ok = False
        form._errors = None  # WTForms caches `form.errors`; recompute with the added ones
        return ok

    def validate_form(self, form):
        """The form's own validation plus uniqueness, each error on its field.

        A form posted by an inline list's "Add" button (`_add_inline`, the way it works without
        JavaScript: issue 28's question builder) saves nothing: the form comes back as typed, with
        one empty row more and rows ticked "Remove" left out.
        """
        if is_form_submitted() and request.form.get("_add_inline"):
            self._add_inline_row(form, request.form["_add_inline"])
            return False
        valid = super().validate_form(form)
        if is_form_submitted():
            # Checked even when another field is wrong, so every problem shows at once.
            valid = self._check_unique(form) and valid
        return valid

    def _add_inline_row(self, form, name):
        """Drop the rows ticked "Remove" and append an empty one to the inline list `name` (when it is one)."""
        field = _inline_list(form, name[:200])
        if field is None:
            return
        kept = [entry for entry in field.entries if f"del-{entry.id}" not in request.form]
        field.entries = kept
        field.append_entry()

    def _field_errors(self, form, errors):
        """Attach {field: message} errors to the form; True when every one found its field."""
        placed = True
        for name, message in errors.items():
            field = getattr(form, name, None) if form is not None else None
            if field is None:
                placed = False
                continue
            field.errors = list(field.errors or []) + [str(message)]
        if form is not None:
            form._errors = None
        return placed

    def create_model(self, form):
        g.admin_form = form
        return super().create_model(form)

    def update_model(self, form, model):
        g.admin_form = form
        return super().update_model(form, model)

    def handle_view_exception(self, exc):
        """Rules' refusals, invalid values and duplicates become messages, never a 500."""
        form = g.get("admin_form")
        if isinstance(exc, DomainError):
            if exc.fields:
                self._field_errors(form, exc.fields)
            flash(exc.message, "error")
            return True
        if isinstance(exc, MongoValidationError):
            # A document's clean() reports under "__all__", naming its field on the inner error.
            errors = {(getattr(err, "field_name", None) if name == "__all__" else name) or name:
                      getattr(err, "message", None) or str(err) for name, err in (exc.errors or {}).items()}
            if errors and self._field_errors(form, errors):
                flash("Please correct the highlighted fields.", "error")
            else:
                flash("This cannot be saved: " + ("; ".join(map(str, errors.values())) or exc.message) + ".", "error")
            return True
        if isinstance(exc, NotUniqueError):
            if form is None or self._check_unique(form):
                flash(f"Another {self.record_noun} already has these details.", "error")
            else:
                flash("Please correct the highlighted fields.", "error")
            return True
        return super().handle_view_exception(exc)

    def after_model_change(self, form, model, is_created):
        """Remember what was saved, so the message after saving can name it."""
        g.saved_record = model
        super().after_model_change(form, model, is_created)

    def _name_saved_record(self):
        """Flask-Admin's fixed "Record was successfully saved/created." becomes "Service Physiotherapy saved."."""
        model = g.pop("saved_record", None)
        if model is None or not session.get("_flashes"):
            return
        noun = self.record_noun[:1].upper() + self.record_noun[1:]
        name = getattr(model, "name", "") if isinstance(getattr(model, "name", None), str) else ""
        said = {admin_gettext("Record was successfully saved."): "saved",
                admin_gettext("Record was successfully created."): "added"}
        session["_flashes"] = [(category, f"{noun} {name} {said[message]}." if name else f"{noun} {said[message]}.")
                               if message in said else (category, message)
                               for category, message in session["_flashes"]]

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """Flask-Admin's create form; the message after saving names the record."""
        response = super().create_view()
        self._name_saved_record()
        return response

    # Patient data read through a form or an export is audited like a details page.

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """Flask-Admin's edit form (audited for patient data); the message after saving names the record."""
        if self.audit_reads and self.can_edit:
            audit(staff_actor(), f"{self.model.__name__}.edit", record=f"{self.model.__name__}:"
                  f"{request.args.get('id', '')[:24]}")
        response = super().edit_view()
        self._name_saved_record()
        return response

    @expose("/export/<export_type>/")
    def export(self, export_type):
        if self.audit_reads and self.can_export:
            audit(staff_actor(), f"{self.model.__name__}.export", record=self.model.__name__)
        return super().export(export_type)


def _inline_list(form, field_id):
    """The FieldList with this id in a form, nested lists (a question's choices) included; or None."""
    for field in form:
        if isinstance(field, FieldList):
            if field.id == field_id:
                return field
            for entry in field.entries:
                inner = entry.form if isinstance(entry, FormField) else None
                found = _inline_list(inner, field_id) if inner is not None else None
                if found is not None:
                    return found
        elif isinstance(field, FormField):
            found = _inline_list(field.form, field_id)
            if found is not None:
                return found
    return None
