"""The back office's home page: today at a glance for the signed-in role, a 4-week chart drawn
on the server as SVG (its numbers in a table beside it), patient search and "Book" up front."""

from zoneinfo import ZoneInfo

from flask import request
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from admin.base import StaffAccessMixin, clinic_zone, staff_actor, staff_role
from admin.roles import FRONT_DESK
from web.audit import audit
from models.documents import Clinic, utcnow
from models.booking.frontdesk import find_patients, minutes_left, patient_cards
from models import formatting
from models.formatting import money
from models.glance import BUCKETS, glance

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 320, 180, 36, 28, 12


def _nice_max(value):
    """A round top for an axis at or above `value` (2, 4, 10 × 10^n: its half is round too)."""
    if value <= 0:
        return 2
    scale = 1
    while True:
        for step in (2, 4, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _count(value):
    return f"{value:g}"


def bar_chart(rows, series, fmt=_count, pad_l=PAD_L, floor=2):
    """Geometry of a grouped bar chart: one group per row, one bar per (key, label, css class).

    The axis reaches at least `floor`, so empty weeks still get a readable scale.
    """
    top = _nice_max(max([r[key] for r in rows for key, _, _ in series] + [floor]))
    plot_w, plot_h = CHART_W - pad_l - 8, CHART_H - PAD_B - PAD_T
    group_w = plot_w / max(len(rows), 1)
    bar_w = (group_w - 12) / max(len(series), 1)
    bars, labels = [], []
    for i, row in enumerate(rows):
        x0 = pad_l + i * group_w + 6
        week_of = formatting.short_date(row["start"], weekday=False)  # "2 Nov", the axis and the title alike
        labels.append((x0 + (group_w - 12) / 2, week_of))
        for j, (key, label, css) in enumerate(series):
            h = plot_h * row[key] / top
            bars.append({"x": round(x0 + j * bar_w, 1), "y": round(PAD_T + plot_h - h, 1), "w": round(bar_w - 2, 1),
                         "h": round(h, 1), "css": css, "title": f"{label}, week of {week_of}: {fmt(row[key])}"})
    ticks = [(round(PAD_T + plot_h - plot_h * f, 1), fmt(top * f)) for f in (0, 0.5, 1)]
    return {"w": CHART_W, "h": CHART_H, "bars": bars, "labels": labels, "ticks": ticks, "base": PAD_T + plot_h,
            "pad_l": pad_l, "series": series}


class HomeView(StaffAccessMixin, AdminIndexView):
    """Today at a glance (staff only, like every view; a provider sees its own day)."""

    extra_css = ["/static/frontdesk.css"]

    @expose("/")
    def index(self):
        """Show today's figures, the last 4 weeks, and the search and Book entry points."""
        clinic = Clinic.get()
        tz = clinic_zone()
        now = utcnow()
        role = staff_role()
        provider = current_user.provider if role == "provider" else None
        if role == "provider" and provider is None:
            figures = None
        else:
            figures = glance(now, tz, provider_id=provider.id if provider else None,
                             currency=clinic.currency if clinic else "gbp")
        query = ""
        found = []
        if role in FRONT_DESK:
            query = request.args.get("q", "").strip()[:100]
            if query:
                found = find_patients(query)
                audit(staff_actor(), "Patient.search", record="Patient", outcome=f"found:{len(found)}")
        currency = figures.currency if figures else "gbp"
        charts = None
        if figures and figures.weeks:
            charts = {
                "counts": bar_chart(figures.weeks, (("bookings", "Bookings", "bar-bookings"),
                                                    ("no_shows", "No-shows", "bar-noshows"))),
                "revenue": bar_chart(figures.weeks, (("revenue", "Revenue", "bar-revenue"),),
                                     fmt=lambda v: money(int(v), currency, whole=True), pad_l=56,
                                     floor=2000),
            }
        return self.render("admin_clinic/home.html", figures=figures, buckets=BUCKETS, role=role,
                           provider=provider, tz=tz, now=now,
                           minutes_left=minutes_left, query=query, found=found, charts=charts,
                           clinic=clinic, user=current_user, front_desk=FRONT_DESK,
                           cards=patient_cards(found, now) if found else [], zone=ZoneInfo(tz))
