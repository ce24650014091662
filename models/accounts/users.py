"""Users: password hashing (argon2id), registering patients, creating staff, signing in."""

import threading
import unicodedata
from datetime import date, datetime

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from bson import ObjectId
from mongoengine import NotUniqueError

from models.accounts.documents import ROLES, Patient, StaffUser
from models.accounts.phones import normalise_phone
from models.accounts.passwords import MAX_PASSWORD, MIN_PASSWORD, check_password_rules  # noqa: F401
from models.audit import audited, insert_with_audit, patient_record
from models.errors import Conflict, Throttled, ValidationFailed

# argon2id with RFC 9106's low-memory parameters (t=3, m=64 MiB, p=4), argon2-cffi's default;
# `set_hash_profile` (called by the app factory from ARGON2_PROFILE) may choose another profile.
PRODUCTION_PROFILE = "RFC_9106_LOW_MEMORY"
hasher = PasswordHasher.from_parameters(getattr(profiles, PRODUCTION_PROFILE))
# Each argon2 computation takes 64 MiB: a burst of sign-ins must queue, not exhaust memory.
# `set_hash_concurrency` (called by the app factory from ARGON2_MAX_CONCURRENT) sets the cap.
_HASH_SLOTS = threading.BoundedSemaphore(4)
HASH_WAIT_SECONDS = 10


def set_hash_concurrency(limit):
    """Cap the argon2 computations running at once in this process."""
    global _HASH_SLOTS
    _HASH_SLOTS = threading.BoundedSemaphore(max(1, int(limit)))


class _hash_slot:
    """Hold one of the process's argon2 slots; 429 when none frees up in time."""

    def __enter__(self):
        self.slots = _HASH_SLOTS
        if not self.slots.acquire(timeout=HASH_WAIT_SECONDS):
            raise Throttled(2, "The service is busy. Please try again in a moment.")

    def __exit__(self, *exc):
        self.slots.release()
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = hasher.hash("not-a-real-password-used-for-timing")


def set_hash_profile(name):
    """Hash with argon2-cffi's parameter profile `name` (`argon2.profiles`) from now on, in this process.

    Only the test suite picks another profile than production's (CHEAPEST: a hash in 0.1 ms
    instead of 0.3–1 s); the settings refuse it outside tests. Hashes made with other parameters
    still verify, and `needs_rehash` upgrades them at the next sign-in.
    """
    global hasher, _DUMMY_HASH
    params = getattr(profiles, name)
    if hasher.time_cost == params.time_cost and hasher.memory_cost == params.memory_cost \
            and hasher.parallelism == params.parallelism:
        return
    hasher = PasswordHasher.from_parameters(params)
    _DUMMY_HASH = hasher.hash("not-a-real-password-used-for-timing")


def hash_password(password):
    """Hash a password with argon2id."""
    with _hash_slot():
        return hasher.hash(password)


def check_password(stored_hash, password):
    """True when the password matches the stored hash (a dummy hash keeps timing even)."""
    try:
        with _hash_slot():
            return hasher.verify(stored_hash or _DUMMY_HASH, password) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash):
    """True when the hash was made with older parameters and should be upgraded."""
    try:
        return hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def normalise_email(raw):
    """Lower-case, NFKC-normalised email, or a ValidationFailed naming the field."""
    if not isinstance(raw, str):
        raise ValidationFailed("Email must be text.", fields={"email": "must be text"})
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    # Plain ASCII addresses only: look-alike unicode and control characters are refused.
    if (not email.isascii() or len(email) > 254 or email.count("@") != 1
            or any(ch.isspace() or ord(ch) < 33 for ch in email)):
        raise ValidationFailed("Enter a valid email address.", fields={"email": "invalid email address"})
    local, _, domain = email.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise ValidationFailed("Enter a valid email address.", fields={"email": "invalid email address"})
    return email


def validate_password(password, field="password", *, email, name):
    """Length 8 to 256, not a common password, not containing the email or name (models/accounts/passwords.py)."""
    # email and name have no default: every path (register, change, reset, staff) must pass the
    # account's own, or the "not your email or name" rule is silently skipped (issue 23 finding 6).
    return check_password_rules(password, field, email=email, name=name)


def _clean_text(value, field, required, max_length):
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{field.capitalize()} is required.", fields={field: "required"})
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field.capitalize()} must be text.", fields={field: "must be text"})
    value = unicodedata.normalize("NFKC", value).strip()
    if required and not value:
        raise ValidationFailed(f"{field.capitalize()} is required.", fields={field: "required"})
    # One line: control characters (CR, LF, tab …) and Unicode line/paragraph separators are
    # refused, so a name can never start a new line in an email's body or a header.
    if len(value) > max_length or any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise ValidationFailed(f"{field.capitalize()} is not valid: one line, without line breaks or "
                               "control characters.", fields={field: "invalid"})
    return value


def clean_name(value, field="name", required=True, max_length=200):
    """A name as stored (patients, staff, providers, services, the clinic): NFKC, trimmed, one line."""
    return _clean_text(value, field, required, max_length)


# --- Issue 26: date of birth (optional) -------------------------------------------------------

def parse_birth_date(raw):
    """A date of birth typed as YYYY-MM-DD or DD/MM/YYYY (UK order), or None."""
    raw = (raw or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    return None


def clean_birth_date(value):
    """A date of birth from text or a date: None when empty; ValidationFailed when unreadable or impossible."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        parsed = parse_birth_date(value)
        if parsed is None:
            raise ValidationFailed("Give the date of birth as DD/MM/YYYY.", fields={"date_of_birth": "invalid"})
        value = parsed
    if not isinstance(value, date) or not date(1900, 1, 1) <= value <= date.today():
        raise ValidationFailed("That date of birth is not possible.", fields={"date_of_birth": "invalid"})
    return value


@audited("patient.update", patient_record)
def set_date_of_birth(patient, value):
    """Set (or clear, with an empty value) a patient's own date of birth; returns the patient."""
    born = clean_birth_date(value)
    Patient.objects(id=patient.id).update_one(set__date_of_birth=born)
    patient.reload()
    return patient


def register_patient(email, password, name, phone=None, admit=None, date_of_birth=None, audit=None):
    """Create a patient account; Conflict when the email is already registered.

    `admit(email)`, when given, runs after the input passed its checks and before anything is
    written (the door's per-address limit counts there, atomically; it raises to refuse).
    `audit`, the unsaved "patient.register" event, is written with the account in one command;
    its actor and record, left empty, are the new patient.
    """
    email = normalise_email(email)
    name = _clean_text(name, "name", True, 200)
    validate_password(password, email=email, name=name)
    phone = normalise_phone(phone)  # E.164, or 422 on the phone field
    born = clean_birth_date(date_of_birth)  # optional (issue 26)
    if admit is not None:
        admit(email)
    patient = Patient(id=ObjectId(), email=email, name=name, phone=phone, date_of_birth=born,
                      password_hash=hash_password(password))
    if audit is not None:
        audit.actor = audit.actor or f"patient:{patient.id}"
        audit.record = audit.record or f"Patient:{patient.id}"
    try:
        insert_with_audit(patient, audit)
    except NotUniqueError:
        raise Conflict("An account with this email already exists. Sign in or reset your password.",
                       code="email_taken") from None
    return patient


def create_staff(email, role, password, name=""):
    """Create a staff user (or reset an existing one's role and password)."""
    email = normalise_email(email)
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}.", fields={"role": "invalid"})
    staff = StaffUser.objects(email=email).first() or StaffUser(email=email)
    staff.role = role
    staff.name = _clean_text(name, "name", False, 200) or staff.name or email.split("@")[0]
    validate_password(password, email=email, name=staff.name)
    staff.password_hash = hash_password(password)
    staff.active = True
    staff.session_version = (staff.session_version or 0) + (1 if staff.id else 0)
    staff.save()
    return staff


def authenticate(model, email, password):
    """Return the active user of `model` with this email and password, or None (same cost either way)."""
    try:
        email = normalise_email(email)
    except ValidationFailed:
        email = None
    user = model.objects(email=email).first() if email else None
    ok = check_password(user.password_hash if user else None, password if isinstance(password, str) else "")
    if not (user and ok and user.active) or getattr(user, "guardian", None) is not None:
        return None  # a dependant (issue 28) never signs in, whatever happened to their record
    if needs_rehash(user.password_hash):
        # Upgrade the stored hash while we hold the plaintext.
        model.objects(id=user.id, password_hash=user.password_hash).update_one(
            set__password_hash=hash_password(password))
    return user


# A refusal reads "failure", like a failed sign-in (what the audit said before actions audited themselves).
@audited("patient.password_change", patient_record, refusal=lambda exc: "failure")
def change_patient_password(patient, current, new):
    """Change a patient's password; every token issued before the change stops working."""
    if not check_password(patient.password_hash, current if isinstance(current, str) else ""):
        raise ValidationFailed("The current password is not correct.",
                               fields={"current_password": "incorrect"})
    validate_password(new, "new_password", email=patient.email, name=patient.name)
    patient.modify(set__password_hash=hash_password(new), inc__token_generation=1)
    return patient
