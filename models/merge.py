"""Merging two records of one patient (issue 26): reception made a duplicate (a phone booking under
a new record, a portal registration beside a desk record) and an admin folds it into the record
to keep.

One action, `merge_patients`, does all of it and audits itself: the duplicate's appointments,
payments, waitlist entries and messages move to the kept record, and so do the people it books for
(its dependants become the kept record's, which then counts them as its household); the kept
record takes the duplicate's phone, date of birth and real email where it has none, and its saved
card when it has none of its own (when both have one, the kept record's stays and the result says
so); the duplicate is deactivated, its sessions end, and it is kept as a pointer (`merged_into`,
`merged_at`) so an old link or an audit row naming it still leads to the patient. The pointer is
written first: a merge interrupted half-way is finished by running it again (the same two
records), and nothing is ever left owned by a record that looks active. `merge_preview` tells the
admin beforehand what `merge_patients` will do, from the same rules.
"""

from dataclasses import dataclass, field

from models.accounts.documents import NO_EMAIL_DOMAIN, Patient, PasswordReset, deliverable
from models.audit import audited
from models.booking.documents import Appointment
from models.booking.waitlist import WaitlistEntry
from models.errors import Conflict, NotFound, ValidationFailed
from models.messages.documents import OutboxMessage
from models.payments.documents import Payment

# The card on file is its Stripe Customer and payment method together (fees charge the method as
# that Customer's), so these move as one.
CARD_FIELDS = ("stripe_customer", "card_payment_method", "card_brand", "card_last4", "card_exp_month",
               "card_exp_year")


def card_words(patient):
    """A saved card as staff read it: "Visa card ending 4242" ("" without one)."""
    if not patient.card_payment_method:
        return ""
    brand = (patient.card_brand or "").strip()
    named = brand.title() + " " if brand and brand.lower() != "card" else ""
    return f"{named}card ending {patient.card_last4}".strip()


def card_plan(keep, duplicate):
    """What a merge does with saved cards: "moved" (the duplicate's goes to the kept record, which
    has none), "kept" (both have one: the kept record's stays) or "" (the duplicate has none)."""
    theirs = duplicate.card_payment_method
    if not theirs:
        return ""
    # The kept record already holding the same card is a merge interrupted after the card moved.
    return "kept" if keep.card_payment_method and keep.card_payment_method != theirs else "moved"


@dataclass
class MergeResult:
    """What a merge did (or, from `merge_preview`, will do), for the admin to read."""

    patient: Patient  # the kept record, reloaded
    moving: dict = field(default_factory=dict)  # {"appointments": n, ...} (preview only)
    dependants: list = field(default_factory=list)  # names of the people the kept record now books for
    card: str = ""  # card_plan's answer
    kept_card: str = ""  # card_words of the kept record's card
    other_card: str = ""  # card_words of the duplicate's card

    def card_sentence(self, done=False):
        """The saved cards in one sentence for staff, before (`done=False`) or after the merge ("" without one)."""
        name = self.patient.name
        if self.card == "moved":
            return f"{name} {'took' if done else 'takes'} the duplicate's saved card ({self.other_card})."
        if self.card == "kept":
            return (f"Both records {'had' if done else 'have'} a saved card: {name} {'kept' if done else 'keeps'} their own "
                    f"({self.kept_card}); the duplicate's ({self.other_card}) {'was' if done else 'is'} not "
                    "moved and will not be charged.")
        return ""


def _check(keep, duplicate):
    if keep is None or duplicate is None:
        raise NotFound("That patient does not exist.", code="patient_not_found")
    if keep.id == duplicate.id:
        raise ValidationFailed("Choose two different records to merge.", fields={"duplicate": "same"})
    keep.reload()
    duplicate.reload()
    if keep.merged_into is not None or not keep.active:
        raise Conflict("The record to keep is inactive or merged into another; keep an active record.",
                       code="not_mergeable")
    if duplicate.merged_into is not None and duplicate.merged_into != keep.id:
        raise Conflict("That duplicate was already merged into another record.", code="already_merged")
    if keep.guardian is not None and Patient.objects(guardian=duplicate.id).only("id").first() is not None:
        # A dependant cannot have dependants (models/accounts/dependants.py): keep the account holder.
        raise Conflict("The record to keep is someone's dependant, and the duplicate books for other people: "
                       "keep the account holder's record instead.", code="not_mergeable")


def _people_of(patient):
    return [p.name for p in Patient.objects(guardian=patient.id, active=True).order_by("name").only("name")]


def merge_preview(keep, duplicate):
    """What merging `duplicate` into `keep` would move, as a MergeResult; refused as the merge would be."""
    _check(keep, duplicate)
    moving = {"appointments": Appointment.objects(patient=duplicate.id).count(),
              "payments": Payment.objects(patient=duplicate.id).count(),
              "waitlist entries": WaitlistEntry.objects(patient=duplicate.id).count(),
              "messages": OutboxMessage.objects(patient=duplicate.id).count()}
    return MergeResult(keep, moving, _people_of(duplicate), card_plan(keep, duplicate), card_words(keep),
                       card_words(duplicate))


def _merge_record(keep, duplicate, *args, **kwargs):
    return f"Patient:{keep.id}"


@audited("patient.merge", _merge_record)
def merge_patients(keep, duplicate, now):
    """Fold `duplicate` into `keep` (both Patients); returns a MergeResult (the kept patient reloaded).

    Refused when they are the same record, when `keep` is itself merged or inactive, when the
    duplicate was merged into another record, or when `keep` is a dependant and the duplicate has
    dependants of its own.
    """
    _check(keep, duplicate)
    people = _people_of(duplicate)
    card = card_plan(keep, duplicate)
    result = MergeResult(keep, dependants=people, card=card, kept_card=card_words(keep),
                         other_card=card_words(duplicate))
    # 1. The pointer first: from here on the duplicate cannot sign in and is never offered for booking.
    Patient.objects(id=duplicate.id).update_one(set__merged_into=keep.id, set__merged_at=now, set__active=False,
                                                inc__token_generation=1)
    # 2. Everything the duplicate owned moves (each update is idempotent: a re-run finds nothing left).
    Appointment.objects(patient=duplicate.id).update(set__patient=keep.id)
    Payment.objects(patient=duplicate.id).update(set__patient=keep.id)
    WaitlistEntry.objects(patient=duplicate.id).update(set__patient=keep.id)
    OutboxMessage.objects(patient=duplicate.id).update(set__patient=keep.id)
    PasswordReset.objects(patient=duplicate.id, used_at=None).update(set__used_at=now)
    # The people the duplicate books for: the household flag first (the hold caps then count them
    # with the kept record even if the move below is interrupted), then their guardian.
    if Patient.objects(guardian=duplicate.id).only("id").first() is not None:
        Patient.objects(id=keep.id).update_one(set__has_dependants=True)
        Patient.objects(guardian=duplicate.id).update(set__guardian=keep.id)
    # 3. What the kept record lacks, it takes from the duplicate.
    changes = {}
    if not keep.phone and duplicate.phone:
        changes["set__phone"] = duplicate.phone
    if keep.date_of_birth is None and duplicate.date_of_birth is not None:
        changes["set__date_of_birth"] = duplicate.date_of_birth
    if not deliverable(keep.email) and deliverable(duplicate.email):
        # The address is unique: the duplicate gives it up before the kept record takes it.
        real = duplicate.email
        Patient.objects(id=duplicate.id).update_one(set__email=f"merged-{duplicate.id}@{NO_EMAIL_DOMAIN}")
        changes["set__email"] = real
    if changes:
        Patient.objects(id=keep.id).update_one(**changes)
    if card == "moved":
        _move_card(keep, duplicate, result)
    keep.reload()
    return result


def _move_card(keep, duplicate, result):
    """The duplicate's card (with its Customer) becomes the kept record's, unless one was saved meanwhile."""
    pm = duplicate.card_payment_method
    still_without_card = Patient.objects(id=keep.id, card_payment_method__in=[None, pm])
    taken = still_without_card.update_one(
        unset__card_setup=True,  # a setup under way belonged to the kept record's old Customer
        **{f"set__{name}": getattr(duplicate, name) for name in CARD_FIELDS})
    if not taken:  # the kept record saved a card of its own meanwhile: it stays
        keep.reload()
        result.card, result.kept_card = "kept", card_words(keep)
        return
    # One Customer and card per record: the pointer forgets them.
    Patient.objects(id=duplicate.id).update_one(unset__stripe_customer=True, unset__card_payment_method=True,
                                                set__card_brand="", set__card_last4="", unset__card_exp_month=True,
                                                unset__card_exp_year=True, unset__card_setup=True)
