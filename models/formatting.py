"""How the product writes money for people: one function for every door, the emails and the desk.

Amounts are integers in minor units plus an ISO 4217 code (CONTRACT.md); Babel's CLDR data decides
the symbol, the sign and the grouping, so the back office, the portal and the emails read alike
("£60.00", "-£20.00", "€15.50"). Beside `clock` in the lowest layer of the domain: it imports
nothing from `models`.
"""

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

# The clinic's locale decides how an amount is written (not which currency it is in); the clinic
# has no locale setting yet, so every caller gets the British one unless it passes another.
DEFAULT_LOCALE = "en_GB"
DEFAULT_CURRENCY = "gbp"


def money(minor, currency=DEFAULT_CURRENCY, locale=DEFAULT_LOCALE):
    """Minor units as people read money: 6000, "gbp" -> "£60.00"; -2000 -> "-£20.00"; None -> ""."""
    if minor is None:
        return ""
    code = (currency or DEFAULT_CURRENCY).upper()
    # Decimal, not float, so no amount shows a penny off; and the currency's own number of decimals
    # (Stripe's minor unit of JPY is the yen itself), which is 2 for the clinic's currencies.
    amount = Decimal(int(minor)).scaleb(-get_currency_precision(code))
    return format_currency(amount, code, locale=locale)


def plain_amount(minor):
    """Minor units as a bare decimal for exports and spreadsheets: 6000 -> "60.00"; None -> ""."""
    if minor is None:
        return ""
    return f"{Decimal(int(minor)).scaleb(-2):.2f}"
