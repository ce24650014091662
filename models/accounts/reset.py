"""Password reset and invitation links: random tokens, stored hashed, single use, short-lived.

- `request_reset(email, ip, now)` answers the same whether or not the email has an
  account (the door always says "if an account exists, we sent a link"). Requests are throttled
  per client address (429 past `RESETS_PER_ADDRESS` an hour) and per account: past
  `EMAILS_PER_ACCOUNT` an hour no further email goes out, silently, so nobody can flood a
  patient's mailbox and the answer still reveals nothing. Earlier links stay valid meanwhile. Both
  are moving windows counted through `models.ratelimits`.
- A link's token is 32 random bytes; only its SHA-256 is stored. It works once, for
  `RESET_MINUTES` (an invitation for `INVITATION_DAYS`); using it spends every other open link of
  the patient, sets the password and bumps `Patient.token_generation`, which ends every session.
- A request for an unknown email (or past the account's email limit) sends MongoDB the same
  commands as one that issues a link, so neither the work nor the time tells them apart.
- Every new password meets the one policy (`check_password_rules`) with the patient's email and name.
- The actions audit themselves (issue 24; `models.audit`): a request "patient.password_reset_request"
  (outcome "sent", or "no_email" with no record: the answer never tells, the audit may), called
  with `audit_as=`; a reset "patient.password_reset" by the patient; a dead link the page was
  opened with, "patient.password_reset" "invalid_link" (`link_is_valid(..., audit_invalid=True)`).
"""

import hashlib
import secrets
from datetime import timedelta

from bson import ObjectId

from models.audit import audit_here, audited

from models.accounts.documents import PasswordReset, Patient  # noqa: F401 (PasswordReset: for callers)
from models.accounts.users import hash_password, normalise_email, validate_password
from models.clock import utcnow
from models.errors import ValidationFailed
from models.messages.documents import OutboxMessage
from models.messages.outbox import enqueue, wake
from models.ratelimits import Limit, hit, spend

RESET_MINUTES = 30
INVITATION_DAYS = 7
RESETS_PER_ADDRESS = 10  # requests an hour from one client address
EMAILS_PER_ACCOUNT = 3  # reset emails an hour to one account
RESET_REQUESTS_PER_ADDRESS = Limit("reset-ip", RESETS_PER_ADDRESS, 3600)  # 429 past it
RESET_EMAILS_PER_ACCOUNT = Limit("reset-acct", EMAILS_PER_ACCOUNT, 3600)  # silent past it
INVALID_LINK = ("This link has expired or has already been used. "
                "Ask for a new one below.")


def _hash(token):
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _account_key(email):
    return hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]


def issue_link(patient, now, purpose="reset"):
    """Create a set-password link for the patient and queue its email; returns the raw token."""
    token = secrets.token_urlsafe(32)
    life = timedelta(minutes=RESET_MINUTES) if purpose == "reset" else timedelta(days=INVITATION_DAYS)
    link = PasswordReset(token_hash=_hash(token), patient=patient.id, purpose=purpose, created_at=now,
                         expires_at=now + life)
    link.save(force_insert=True)
    enqueue("password_reset" if purpose == "reset" else "invitation", patient.email,
            f"PasswordReset:{link.id}", context={"token": token}, expires_at=link.expires_at,
            patient_id=patient.id, now=now)
    return token


@audited("patient.password_reset_request", lambda *args, **kwargs: "", refused_on=(),
         outcome=lambda patient: "sent" if patient else "no_email",
         done_record=lambda patient: f"Patient:{patient.id}" if patient else "")
def request_reset(email, ip, now):
    """Email a reset link when the account exists; throttled per address (429) and per account (silently)."""
    hit(RESET_REQUESTS_PER_ADDRESS, ip or "unknown")
    try:
        email = normalise_email(email)
    except ValidationFailed:
        return None  # nothing to send; the answer stays the same
    room = spend(RESET_EMAILS_PER_ACCOUNT, _account_key(email))
    patient = Patient.objects(email=email, active=True).first()
    if patient is None or not room:
        _same_work_as_a_link(email, now)
        return None
    issue_link(patient, now, "reset")
    return patient


def _same_work_as_a_link(email, now):
    """Do what `issue_link` does (build and check the link and its email, send MongoDB two writes), storing nothing.

    Without it a known email cost two writes more than an unknown one, and the answer's time told
    them apart (issue 23 finding 8: 25.8 ms against 16.3 ms). The documents are built through
    MongoEngine as the real ones are (most of a write's cost here is that), then sent as
    `$setOnInsert` updates without upsert on their own unique keys: nobody holds a fresh token, so
    the server walks the same indexes, matches nothing and writes nothing, and the wire carries
    the same documents.
    """
    token = secrets.token_urlsafe(32)
    link = PasswordReset(id=ObjectId(), token_hash=_hash(token), patient=ObjectId(), purpose="reset",
                         created_at=now, expires_at=now + timedelta(minutes=RESET_MINUTES))
    message = OutboxMessage(kind="password_reset", to=email, subject=f"PasswordReset:{link.id}",
                            context={"token": token}, due_at=now, expires_at=link.expires_at,
                            patient=link.patient, created_at=now)
    for doc, unique_key in ((link, ("token_hash",)), (message, ("kind", "subject", "version", "variant"))):
        doc.validate()
        fields = doc.to_mongo().to_dict()
        fields.pop("_id", None)
        doc._get_collection().update_one({name: fields.get(name) for name in unique_key},
                                         {"$setOnInsert": fields})
    # The real path wakes the worker after its insert (issue 29): so does this one, to take as long.
    wake()


def queue_invitation(patient, now=None):
    """Email a patient created by staff a link to choose their password (valid 7 days)."""
    return issue_link(patient, now or utcnow(), "invitation")


def link_is_valid(token, now, audit_invalid=False):
    """True while the link can still be used (the page shows the form only then); with
    `audit_invalid`, a dead link is audited ("patient.password_reset", outcome "invalid_link")."""
    valid = (isinstance(token, str) and bool(token) and len(token) <= 200
             and PasswordReset.objects(token_hash=_hash(token), used_at=None, expires_at__gt=now).count() > 0)
    if not valid and audit_invalid:
        audit_here("anonymous", "patient.password_reset", outcome="invalid_link")
    return valid


def reset_password(token, password, now):
    """Set a new password with a link (once); every session of the patient ends; audited as the
    patient's own "patient.password_reset". Returns the patient."""
    if not isinstance(token, str) or not token or len(token) > 200:
        raise ValidationFailed(INVALID_LINK, code="invalid_token", fields={"token": "invalid"})
    live = {"token_hash": _hash(token), "used_at": None, "expires_at": {"$gt": now}}
    found = PasswordReset._get_collection().find_one(live, {"patient": 1})
    patient = Patient.objects(id=found["patient"], active=True).first() if found else None
    if patient is None:
        raise ValidationFailed(INVALID_LINK, code="invalid_token", fields={"token": "invalid"})
    # The one password policy, with the account's own email and name; checked before the link is
    # spent, so a refused password does not waste it.
    validate_password(password, email=patient.email, name=patient.name)
    if PasswordReset._get_collection().find_one_and_update(live, {"$set": {"used_at": now}}) is None:
        raise ValidationFailed(INVALID_LINK, code="invalid_token", fields={"token": "invalid"})  # spent meanwhile
    # Other open links of this patient are spent too: one reset closes them all.
    PasswordReset.objects(patient=patient.id, used_at=None).update(set__used_at=now)
    patient.modify(set__password_hash=hash_password(password), inc__token_generation=1)
    audit_here(f"patient:{patient.id}", "patient.password_reset", record=f"Patient:{patient.id}")
    return patient
