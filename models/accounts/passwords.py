"""Password rules: length, not a common password, not built from the account's email or name.

The common list (`models/accounts/data/common-passwords.txt`, 30,000 entries from zxcvbn, MIT) is read
once per process. A password is refused when, lower-cased, it is on the list, or is a listed one
with digits and symbols added at the end or the start ("password2026!", "1dragon"), or has fewer
than four different characters ("aaaaaaaa", "abababab"), or contains the account's email, the
email's local part, or the person's name (a whole name, or one of its words of four letters or
more). No composition rules (ASVS 5.0 / NIST SP 800-63B).
"""

import os
import re
import unicodedata
from functools import lru_cache

from models.errors import ValidationFailed

MIN_PASSWORD = 8
MAX_PASSWORD = 256
LIST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "common-passwords.txt")
COMMON_MESSAGE = "This password is too common or too easy to guess. Choose a longer, less predictable one."
PERSONAL_MESSAGE = "The password must not contain your email address or your name."
_EDGES = re.compile(r"^[\d\W_]+|[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords():
    """The shipped common-password list as a frozenset (lower case)."""
    with open(LIST_PATH, encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def _fold(text):
    return unicodedata.normalize("NFKC", text or "").casefold()


def is_common(password):
    """True when the password is on the common list, alone or padded with digits/symbols."""
    folded = _fold(password)
    common = common_passwords()
    if folded in common or folded.replace(" ", "") in common:
        return True
    core = _EDGES.sub("", folded)
    if core != folded and (core in common or len(core) < 4):
        return True
    return len(set(folded)) < 4


def _personal_parts(email, name):
    parts = []
    email = _fold(email)
    if email:
        parts.append(email)
        local = email.split("@")[0]
        if len(local) >= 3:
            parts.append(local)
    name = _fold(name)
    if name:
        joined = re.sub(r"\W+", "", name)
        if len(joined) >= 3:
            parts.append(joined)
        parts.extend(word for word in re.split(r"\W+", name) if len(word) >= 4)
    return parts


def contains_personal(password, email="", name=""):
    """True when the password contains the email, its local part, or the name (or a name word)."""
    folded = _fold(password)
    squeezed = re.sub(r"\W+", "", folded)
    return any(part in folded or part in squeezed for part in _personal_parts(email, name))


def check_password_rules(password, field="password", *, email, name):
    """Return the password, or raise ValidationFailed with the reason on `field` (the account's email and name required)."""
    if not isinstance(password, str):
        raise ValidationFailed("Password must be text.", fields={field: "must be text"})
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"Password must be at least {MIN_PASSWORD} characters.",
                               fields={field: f"at least {MIN_PASSWORD} characters"})
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(f"Password must be at most {MAX_PASSWORD} characters.",
                               fields={field: f"at most {MAX_PASSWORD} characters"})
    if is_common(password):
        raise ValidationFailed(COMMON_MESSAGE, code="weak_password", fields={field: "too common"})
    if contains_personal(password, email, name):
        raise ValidationFailed(PERSONAL_MESSAGE, code="weak_password", fields={field: "contains email or name"})
    return password
