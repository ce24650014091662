"""Accounts: patients and staff, their passwords, signing in, the sign-in throttle and reset links.

`documents` holds Patient, StaffUser and PasswordReset; `users` hashing, registering and signing in
(re-exported here); `passwords` the composition rules; `throttle` the sign-in throttle; `reset` the
set-password links; `patients` the staff-created patient (`create_by_staff`). Import `reset`, `throttle`
and `patients` by name (they queue email through messages).
"""

from models.accounts.passwords import MAX_PASSWORD, MIN_PASSWORD, check_password_rules  # noqa: F401
from models.accounts.users import (  # noqa: F401
    HASH_WAIT_SECONDS,
    authenticate,
    change_patient_password,
    check_password,
    create_staff,
    hash_password,
    needs_rehash,
    normalise_email,
    register_patient,
    set_hash_concurrency,
    set_hash_profile,
    validate_password,
)
