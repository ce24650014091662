"""Staff sign-in, sign-out and session lifetime for the back office (Flask-Login, CSRF-protected form).

A staff session ends on the server at sign-out (the user's `session_version` is bumped, so every
copy of the session cookie, on any device, stops working), after `STAFF_IDLE_MINUTES` without a
request (default 30) and `STAFF_SESSION_HOURS` after sign-in (default 12). Flask refuses any
session cookie signed longer ago than PERMANENT_SESSION_LIFETIME (set to the absolute limit).
"""

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from web.audit import audit
from web.errors import headers_of, status_of
from web.signin import guarded_password_check, remember_device
from models.accounts import authenticate
from models.documents import StaffUser
from models.errors import Throttled

bp = Blueprint("staff_auth", __name__, url_prefix="/admin")

# Written on each request at most this often, so the session cookie is not re-sent every time.
SEEN_RESOLUTION = 60


class StaffLoginForm(FlaskForm):
    """The staff sign-in form."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


def is_admin_path(target):
    """True for a relative path inside the back office ("/admin", "/admin/...", "/admin?...")."""
    return (isinstance(target, str) and (target == "/admin" or target.startswith(("/admin/", "/admin?")))
            and "\\" not in target and "//" not in target.split("?")[0]
            and not any(ord(ch) < 33 or ord(ch) == 127 for ch in target))


def safe_next(target):
    """Only follow a `next` that stays inside the back office (a relative /admin path)."""
    return target if is_admin_path(target) else url_for("admin.index")


def session_expired(now=None):
    """Why the staff session in this request has ended ("idle", "absolute"), or None."""
    now = now or time.time()
    since, seen = session.get("staff_since"), session.get("staff_seen")
    if not isinstance(since, (int, float)) or not isinstance(seen, (int, float)):
        return "absolute"  # a session from before these limits, or a hand-made one
    if now - since > current_app.config.get("STAFF_SESSION_HOURS", 12) * 3600:
        return "absolute"
    if now - seen > current_app.config.get("STAFF_IDLE_MINUTES", 30) * 60:
        return "idle"
    return None


@bp.before_app_request
def enforce_staff_session_limits():
    """End a staff session that is idle or too old before any back-office view runs."""
    if not request.path.startswith("/admin") or "_user_id" not in session:
        return None
    now = time.time()
    why = session_expired(now)
    if why:
        user_id = session.get("_user_id", "")
        logout_user()
        session.clear()
        audit(f"staff:{user_id.partition(':')[0]}", "staff.session_end", outcome=f"timeout_{why}")
        flash("Your session has ended; please sign in again.", "error")
        return None
    if now - session["staff_seen"] >= SEEN_RESOLUTION:
        session["staff_seen"] = int(now)
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show and handle the staff sign-in form."""
    form = StaffLoginForm()
    if form.validate_on_submit():
        email = form.email.data
        found = []
        try:
            guarded_password_check("staff", email, lambda: bool(
                found.append(authenticate(StaffUser, email, form.password.data)) or found[0]))
        except Throttled as exc:
            flash(exc.message, "error")
            return render_template("admin/login.html", form=form), status_of(exc), headers_of(exc)
        user = found[0]
        if user is not None:
            target = safe_next(request.args.get("next"))
            # A fresh session: nothing from before sign-in survives (session fixation).
            session.clear()
            login_user(user)
            now = int(time.time())
            session["staff_since"] = now
            session["staff_seen"] = now
            remember_device("staff", user.email)
            audit(f"staff:{user.id}", "staff.login", record=f"StaffUser:{user.id}")
            return redirect(target)
        audit("anonymous", "staff.login", outcome="failure")
        flash("Email or password is not correct.", "error")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form), (400 if form.errors else 200)


@bp.post("/logout")
def logout():
    """Sign the staff user out and end the session on the server (every copy of the cookie)."""
    if current_user.is_authenticated:
        audit(f"staff:{current_user.id}", "staff.logout", record=f"StaffUser:{current_user.id}")
        StaffUser.objects(id=current_user.id).update_one(inc__session_version=1)
        logout_user()
    session.clear()
    return redirect(url_for("staff_auth.login"))
