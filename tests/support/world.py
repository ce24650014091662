"""`clinic_world`: the one builder of "a clinic with services, providers and their hours".

A test (or a test file's own fixture) says only what its assertions depend on:

    world = clinic_world(
        services={"consult": dict(name="Consultation", price=6000), "call": dict(name="Call", price=0)},
        providers={"one": dict(name="Dr One", services=["consult", "call"], lunch=None)},
        patients=["pat@example.com"], staff=["admin", "reception"], provider_staff="one")

and gets a `World`: a dict of everything it made by key (`world["consult"]`, `world["one"]`,
`world["clinic"]`, `world["patient"]`), with `world.service` / `world.provider` for the first of each.
Everything is written through the factories (the same domain functions the doors use).
"""

import mongoengine
import pytest

from tests.support.factories import make_clinic, make_patient, make_provider, make_service, make_staff

# What `clinic_world()` builds when told nothing: one paid 30-minute service, one provider working
# 09:00-17:00 every day with a lunch break from 12:00 (the factories' defaults).
DEFAULT_SERVICES = {"consult": {"name": "Consultation"}}
DEFAULT_PROVIDERS = {"provider": {"name": "Dr Test"}}


class World(dict):
    """What `build_world` made, by key; `.clinic`, `.service` and `.provider` name the usual ones."""

    def __init__(self, clinic, services, providers, patients, staff):
        super().__init__()
        assert not set(services) & set(providers), "clinic_world: one key per service and provider"
        self.clinic, self.services, self.providers = clinic, services, providers
        self.patients, self.staff = patients, staff
        self["clinic"] = clinic
        self.update(services)
        self.update(providers)
        if patients:
            self["patient"] = next(iter(patients.values()))

    @property
    def service(self):
        """The first service made."""
        return next(iter(self.services.values()))

    @property
    def provider(self):
        """The first provider made."""
        return next(iter(self.providers.values()))

    @property
    def patient(self):
        """The first patient made (None when none was asked for)."""
        return next(iter(self.patients.values()), None)


def build_world(services=None, providers=None, clinic=None, patients=(), staff=(), provider_staff=None):
    """Make a clinic, its services, its providers with weekly hours, then patients and staff.

    - `clinic`: `make_clinic` arguments, plus any other Clinic field to set (e.g. `max_held`);
    - `services`: key -> `make_service` arguments (in order; `name` defaults to the key);
    - `providers`: key -> `make_provider` arguments, `services` given as service keys (default:
      all of them); `schedule=False` (with an optional `email`) makes one without hours;
    - `patients`: emails (or `make_patient` argument dicts), registered in order;
    - `staff`: roles, one staff user each (`<role>@clinic.test`); `provider_staff`: the key of the
      provider that the `provider` role's user is linked to.
    """
    clinic_args = dict(clinic or {})
    extra = {k: clinic_args.pop(k) for k in list(clinic_args)
             if k not in ("tz", "phone", "hold_minutes", "step")}
    made_clinic = make_clinic(**clinic_args)
    if extra:
        made_clinic.update(**{f"set__{k}": v for k, v in extra.items()})
        made_clinic.reload()
    made_services = {}
    for key, spec in (DEFAULT_SERVICES if services is None else services).items():
        spec = dict(spec)
        fields = {k: spec.pop(k) for k in ("description", "refund_rule") if k in spec}
        service = make_service(**dict({"name": key}, **spec))
        if fields:
            for name, value in fields.items():
                setattr(service, name, value)
            service.save()
        made_services[key] = service
    made_providers = {}
    for key, spec in (DEFAULT_PROVIDERS if providers is None else providers).items():
        spec = dict(spec)
        offered = [made_services[k] for k in spec.pop("services", list(made_services))]
        if spec.pop("schedule", True):
            made_providers[key] = make_provider(offered, **spec)
        else:  # a provider with no weekly hours yet (what the schedule editor starts from)
            from models import Provider

            name = spec.pop("name")
            email = spec.pop("email", None) or f"{name.lower().replace(' ', '.')}@clinic.test"
            made_providers[key] = Provider(name=name, email=email, services=offered).save()
    made_staff = {}
    for role in staff:
        made_staff[role] = make_staff(role)
    if provider_staff is not None:
        from models import StaffUser

        user = made_staff.get("provider") or make_staff("provider")
        StaffUser.objects(id=user.id).update_one(set__provider=made_providers[provider_staff])
        made_staff["provider"] = user
    made_patients = {}
    for who in patients:
        args = {"email": who} if isinstance(who, str) else dict(who)
        made_patients[args["email"]] = make_patient(**args)
    return World(made_clinic, made_services, made_providers, made_patients, made_staff)


@pytest.fixture
def clinic_world(app_config):
    """`build_world` for this test; call it after the test's app exists (it writes to that app's database).

    It does not build an app itself, so a test that needs one with its own settings
    (`make_app(SMTP_URL=...)`, `live_server(...)`) makes it first and then calls this.
    """

    def build(**options):
        # The models write wherever the last app pointed MongoEngine; refuse another test's database.
        try:
            database = mongoengine.get_db().name
        except mongoengine.connection.ConnectionFailure:
            database = None
        assert database == app_config["MONGODB_DB"], \
            "clinic_world: make the test's app (the `app` fixture, make_app or live_server) first"
        return build_world(**options)

    return build
