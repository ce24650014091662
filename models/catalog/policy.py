"""No-show protection (issue 27): a service's deposit and fees as one value, and the plain sentence
the patient agrees to before booking. Pure: reads the service in hand, no database, no clock."""

from dataclasses import asdict, dataclass

from models.formatting import money


@dataclass(frozen=True)
class Policy:
    """What booking a service commits the patient to (money in minor units; 0 = none)."""

    deposit: int
    late_cancel_fee: int
    no_show_fee: int
    cancellation_hours: int
    pay_at_clinic: bool

    @property
    def needs_card(self):
        """A card on file is needed to book: a fee could be charged, or nothing is paid online."""
        return bool(self.late_cancel_fee or self.no_show_fee or self.pay_at_clinic)

    def public(self):
        """The contract's `policy` object of `GET /api/services`."""
        data = asdict(self)
        data.pop("pay_at_clinic")
        return data


def policy_of(service):
    """The service's policy now; a percentage deposit is rounded down to the minor unit."""
    price = service.price or 0
    if getattr(service, "pay_at_clinic", False):
        deposit = 0
    elif getattr(service, "deposit_percent", 0):
        deposit = price * service.deposit_percent // 100
    else:
        deposit = min(getattr(service, "deposit_amount", 0) or 0, price)
    if deposit >= price:
        deposit = 0  # a "deposit" of the whole price is the ordinary payment
    return Policy(deposit=deposit, late_cancel_fee=getattr(service, "late_cancel_fee", 0) or 0,
                  no_show_fee=getattr(service, "no_show_fee", 0) or 0,
                  cancellation_hours=service.cancellation_window_hours or 0,
                  pay_at_clinic=bool(getattr(service, "pay_at_clinic", False)))


def policy_sentence(policy, currency, card_last4=None):
    """The one plain sentence the review step states and the patient agrees to ("" when nothing applies)."""
    card = f"your card ending {card_last4}" if card_last4 else "your card on file"
    parts = []
    late, no_show = policy.late_cancel_fee, policy.no_show_fee
    hours = policy.cancellation_hours
    window = f"less than {hours} hour{'s' if hours != 1 else ''} before"
    if late and late == no_show:
        parts.append(f"If you cancel {window}, or do not come, we will charge {money(late, currency)} to {card}.")
    else:
        if late:
            parts.append(f"If you cancel {window}, we will charge {money(late, currency)} to {card}.")
        if no_show:
            parts.append(f"If you do not come, we will charge {money(no_show, currency)} to {card}.")
    if policy.deposit:
        parts.insert(0, f"We take a deposit of {money(policy.deposit, currency)} now; the rest is paid at the clinic.")
    elif policy.pay_at_clinic:
        parts.insert(0, "You pay at the clinic; nothing is taken now.")
    return " ".join(parts)
