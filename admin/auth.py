"""Staff sign-in and sign-out for the back office (Flask-Login, CSRF-protected form)."""

from flask import Blueprint, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from clinic.audit import audit
from models.accounts import authenticate
from models.errors import Throttled
from portal.auth import throttle
from models.documents import StaffUser

bp = Blueprint("staff_auth", __name__, url_prefix="/admin")


class StaffLoginForm(FlaskForm):
    """The staff sign-in form."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


def safe_next(target):
    """Only follow a `next` that stays inside the back office."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show and handle the staff sign-in form."""
    form = StaffLoginForm()
    if form.validate_on_submit():
        guard = throttle()
        email, ip = form.email.data, request.remote_addr
        try:
            guard.check("staff", email, ip)
        except Throttled as exc:
            flash(exc.message, "error")
            response = make_response(render_template("admin/login.html", form=form), 429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        user = authenticate(StaffUser, email, form.password.data)
        if user is not None:
            guard.success("staff", email, ip)
            target = safe_next(request.args.get("next"))
            # A fresh session: nothing from before sign-in survives (session fixation).
            session.clear()
            login_user(user)
            audit(f"staff:{user.id}", "staff.login", record=f"StaffUser:{user.id}")
            return redirect(target)
        guard.failure("staff", email, ip)
        audit("anonymous", "staff.login", outcome="failure")
        flash("Email or password is not correct.", "error")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form), (400 if form.errors else 200)


@bp.post("/logout")
def logout():
    """Sign the staff user out."""
    if current_user.is_authenticated:
        audit(f"staff:{current_user.id}", "staff.logout", record=f"StaffUser:{current_user.id}")
        logout_user()
    session.clear()
    return redirect(url_for("staff_auth.login"))
