"""How a patient is reached (issue 29): their phone (E.164) and `contact_by` (email, text or both)."""

from models.accounts.documents import Patient, deliverable, patient_channels
from models.accounts.phones import normalise_phone
from models.audit import audited
from models.errors import ValidationFailed

CHANNELS = ("email", "sms")
UNSET = object()
# The choice as the portal's account page and the back office's patient form offer it (one radio or
# option each), and the `contact_by` channels each stands for.
CHOICES = (("email", "Email"), ("sms", "Text message"), ("both", "Both"))
CHOICE_CHANNELS = {"email": ["email"], "sms": ["sms"], "both": ["email", "sms"]}


def contact_choice(patient):
    """The key of CHOICES the patient is reached by now (`patient_channels`), "" when by nothing."""
    channels = {channel for channel, _address in patient_channels(patient)}
    return "both" if channels == {"email", "sms"} else next(iter(channels), "")


def channels_of(choice):
    """`contact_by` for a key of CHOICES; None for anything else, which `update_contact` refuses."""
    return CHOICE_CHANNELS.get(choice)


@audited("patient.contact", lambda patient, *a, **k: f"Patient:{patient.id}")
def update_contact(patient, phone=UNSET, contact_by=UNSET):
    """Change the patient's phone and/or `contact_by`; 422 naming the field for a bad number or a
    channel they cannot be reached by (texts need a phone, email a real address). Returns the patient."""
    new_phone = patient.phone or ""
    if phone is not UNSET:
        new_phone = normalise_phone(phone)
    chosen = list(patient.contact_by or [])
    if contact_by is not UNSET:
        if contact_by is None or not isinstance(contact_by, list) or not contact_by or \
                any(c not in CHANNELS for c in contact_by):
            raise ValidationFailed("Choose how we contact you: email, text message or both.", fields={"contact_by": "invalid"})
        chosen = [c for c in CHANNELS if c in contact_by]
    if "sms" in chosen and not new_phone:
        raise ValidationFailed("Add a mobile number to get text messages.", fields={"phone": "required"})
    if "email" in chosen and not deliverable(patient.email):
        raise ValidationFailed("Add an email address to get email.", fields={"contact_by": "no email"})
    Patient.objects(id=patient.id).update_one(set__phone=new_phone, set__contact_by=chosen)
    patient.phone, patient.contact_by = new_phone, chosen
    return patient
