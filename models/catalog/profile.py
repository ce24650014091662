"""The clinic's profile (issue 25): its public face (`public_profile`, the answer of GET /api/clinic),
its brand colour as an accessible accent, the logo's checks and storage, and re-opening a public
holiday. Pages, emails and the back office all read the clinic's identity from here."""

import hashlib
import re
from datetime import timedelta

from flask import current_app, has_app_context

from models.audit import audited
from models.catalog.closures import closed_dates, describe
from models.catalog.documents import Clinic, ClinicLogo
from models.clock import local_today
from models.errors import NotFound, ValidationFailed
from models.formatting import DEFAULT_LOCALE, DEFAULT_REGION

LOGO_MAX_BYTES = 512 * 1024
LOGO_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "svg": "image/svg+xml"}
DEFAULT_ACCENT = "#0b6e4f"
# WCAG 2.1 AA for normal text: white text on the accent (buttons) needs 4.5:1.
MIN_CONTRAST = 4.5
CLOSURE_DAYS_AHEAD = 366


# --- the brand colour ---------------------------------------------------------------------------


def _luminance(hex_colour):
    """WCAG relative luminance of '#rrggbb'."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_with_white(hex_colour):
    """The contrast ratio of white on the colour (1 to 21)."""
    return 1.05 / (_luminance(hex_colour) + 0.05)


def accent_colour(brand):
    """The brand colour when white text on it reaches 4.5:1; a too-light one is darkened step by step
    (same hue) until it does; a missing or malformed one is the default accent."""
    if not brand or not re.fullmatch(r"#[0-9a-fA-F]{6}", brand):
        return DEFAULT_ACCENT
    colour = brand.lower()
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    while contrast_with_white(colour) < MIN_CONTRAST:
        rgb = [int(c * 0.9) for c in rgb]
        colour = "#" + "".join(f"{c:02x}" for c in rgb)
    return colour


# --- the logo -----------------------------------------------------------------------------------


def logo_kind(data):
    """'png', 'jpeg' or 'svg' from the file's own bytes (never its name), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    head = data[:2048].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or head.startswith(b"<!--"):
        return "svg" if b"<svg" in data[:4096].lower() else None
    return None


def check_logo(data):
    """The logo's content type, or ValidationFailed: PNG, JPEG or SVG, at most 512 KB, and an SVG
    without scripts, event handlers or outside references (it is served from our own origin)."""
    if not data:
        raise ValidationFailed("Choose an image file for the logo.", fields={"logo": "empty"})
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationFailed(f"The logo is {len(data) // 1024} KB; the most it may be is 512 KB.",
                               code="logo_too_large", fields={"logo": "too large"})
    kind = logo_kind(data)
    if kind is None:
        raise ValidationFailed("The logo must be a PNG, JPEG or SVG image.", code="logo_type",
                               fields={"logo": "not an image"})
    if kind == "svg":
        text = data.decode("utf-8", "replace").lower()
        if re.search(r"<script|<foreignobject|\son\w+\s*=|javascript:|<!entity|(href|src)\s*=\s*[\"']\s*(https?:|//|data:)",
                     text):
            raise ValidationFailed("That SVG holds scripts or links to other files; save it as a plain SVG or PNG.",
                                   code="logo_unsafe", fields={"logo": "unsafe SVG"})
    return LOGO_TYPES[kind]


def _clinic_record(clinic, *args, **kwargs):
    return f"Clinic:{clinic.id}"


@audited("clinic.logo", _clinic_record)
def save_logo(clinic, data, now):
    """Check and store a new logo for the clinic (kept in MongoDB by its SHA-256); returns the clinic."""
    content_type = check_logo(data)
    sha = hashlib.sha256(data).hexdigest()
    if not ClinicLogo.objects(sha256=sha).first():
        ClinicLogo(sha256=sha, content_type=content_type, data=data, uploaded_at=now).save()
    clinic.logo_sha = sha
    clinic.save()
    # Older logos are no longer shown anywhere.
    ClinicLogo.objects(sha256__ne=sha).delete()
    return clinic


@audited("clinic.logo_removed", _clinic_record)
def remove_logo(clinic):
    """Take the clinic's logo away."""
    clinic.logo_sha = ""
    clinic.save()
    ClinicLogo.objects().delete()


def logo(sha):
    """(content type, bytes) of a stored logo, or NotFound."""
    found = ClinicLogo.objects(sha256=sha).first() if re.fullmatch(r"[0-9a-f]{64}", sha or "") else None
    if found is None:
        raise NotFound("No such logo.", code="logo_not_found")
    return found.content_type, bytes(found.data)


def logo_path(clinic):
    """The logo's address (its hash in it, so it can be cached for a year), or None."""
    return f"/clinic/logo/{clinic.logo_sha}" if clinic is not None and clinic.logo_sha else None


# --- public holidays ----------------------------------------------------------------------------


@audited("clinic.holiday_opened", _clinic_record)
def reopen_holiday(clinic, day):
    """Open the clinic on a public holiday after all (its times become bookable again)."""
    if day not in (clinic.reopened_holidays or []):
        clinic.reopened_holidays = sorted([*(clinic.reopened_holidays or []), day])
        clinic.save()
    return clinic


@audited("clinic.holiday_closed", _clinic_record)
def close_holiday_again(clinic, day):
    """Close the clinic again on a public holiday that had been opened."""
    if day in (clinic.reopened_holidays or []):
        clinic.reopened_holidays = [d for d in clinic.reopened_holidays if d != day]
        clinic.save()
    return clinic


# --- the public face ----------------------------------------------------------------------------


def upcoming_closures(catalog, now, days=CLOSURE_DAYS_AHEAD):
    """[{date, reason}] for each local date in the next `days` the clinic is closed (wholly or in part)."""
    clinic = catalog.require_clinic()
    first = local_today(clinic.timezone, now)
    last = first + timedelta(days=days - 1)
    out = []
    for day, closure in closed_dates(catalog.closures, clinic.timezone, first, last):
        out.append({"date": day.isoformat(), "reason": describe(closure, clinic.timezone, day)})
    return out


def public_profile(catalog, now):
    """What anyone may read about the clinic: GET /api/clinic's answer."""
    clinic = catalog.require_clinic()
    return {
        "name": clinic.name,
        "address": clinic.address or "",
        "phone": clinic.phone or "",
        "email": clinic.email or "",
        "timezone": clinic.timezone,
        "currency": clinic.currency,
        "brand_colour": clinic.brand_colour or DEFAULT_ACCENT,
        "logo_url": logo_path(clinic),
        "locale": clinic.locale or DEFAULT_LOCALE,
        "closures": upcoming_closures(catalog, now),
    }


def get_clinic():
    """The installation's clinic, or NotFound."""
    clinic = Clinic.get()
    if clinic is None:
        raise NotFound("The clinic is not set up yet.", code="clinic_missing")
    return clinic


def phone_region(clinic):
    """The country phone numbers are read in when typed without a country code, and shown in national
    format for: the country of the clinic's holiday region ("GB-ENG" -> "GB"), else `PHONE_REGION`."""
    region = (clinic.holiday_region or "") if clinic is not None else ""
    if region:
        return region.split("-")[0].upper()[:2]
    if has_app_context():
        return (current_app.config.get("PHONE_REGION") or DEFAULT_REGION).upper()
    return DEFAULT_REGION
