"""Who may do what in the back office: every role table the views read, in one place.

The roles themselves are the domain's (`models.documents.ROLES`); which of them may open, change,
export or act on a page is the back office's door rule, so it lives here.
"""

from models.accounts.documents import ROLES

ADMIN_ONLY = ("admin",)
FRONT_DESK = ("admin", "reception")
EVERYONE = ROLES
SCHEDULE_EDITORS = ("admin", "provider")  # a provider edits their own schedule and time off
# Who is offered "Create" on Schedules: admins; a provider only while they have no hours yet (their
# first schedule, `ScheduleView.can_create`), since a provider has one schedule, which they edit.
SCHEDULE_CREATORS = ADMIN_ONLY
NOBODY = ()

# Who may see money (prices, amounts, takings): not the provider role, whose pages show the day's
# work, not the till.
SEES_MONEY = FRONT_DESK

# The day view's actions: check-in and no-show (and their undo) for everyone on the day; cancelling,
# taking payment and moving for the front desk.
DAY_ACTIONS = {"check_in": EVERYONE, "undo_check_in": EVERYONE, "no_show": EVERYONE, "undo_no_show": EVERYONE,
               "cancel": FRONT_DESK, "pay": FRONT_DESK, "move": FRONT_DESK}
