"""The Lead Registration demo: a data table, operations and views on the surface, an
integration account with a key, and a few leads, so Execute() and Query() answer at once.

Installed by `manage.py bootstrap` on a fresh database, after fixtures/demo.json (the
application, the roles and Axway's greeting flow).
"""

from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.services import create_api_key
from apps.flows.models import Application
from apps.records.services import create_record, save_record_type
from apps.surface.models import Operation, View
from apps.surface.services import configure_surface

APPLICATION = "Lead Registration"
ACCOUNT = "lead-intake"
LEAD_FIELDS = [
    {"name": "Company", "type": "text", "required": True},
    {"name": "Contact", "type": "text", "required": True},
    {"name": "Email", "type": "email", "required": True},
    {"name": "Phone", "type": "text"},
    {
        "name": "Lead Source",
        "type": "choice",
        "choices": ["Web", "Referral", "Trade show", "Partner"],
        "default": "Web",
    },
    {"name": "Rating", "type": "choice", "choices": ["Hot", "Warm", "Cold"], "default": "Warm"},
    {"name": "Notes", "type": "long text"},
]
SAMPLE_LEADS = [
    {"Company": "Acme Ltd", "Contact": "Ada Byron", "Email": "ada@acme.example", "Rating": "Hot"},
    {
        "Company": "Globex",
        "Contact": "Hank Scorpio",
        "Email": "hank@globex.example",
        "Lead Source": "Trade show",
        "Rating": "Warm",
    },
    {
        "Company": "Initech",
        "Contact": "Peter Gibbons",
        "Email": "peter@initech.example",
        "Lead Source": "Referral",
        "Rating": "Cold",
        "Notes": "Call after the quarter closes.",
    },
    {"Company": "Umbrella", "Contact": "Alice Abernathy", "Email": "alice@umbrella.example"},
]


@dataclass(frozen=True)
class Demo:
    application: Application
    account: User
    key: str  # shown once


@transaction.atomic
def install_lead_registration(*, owner: User) -> Demo:
    """Install the demo in an application named Lead Registration (created if missing)."""
    application, _ = Application.objects.get_or_create(name=APPLICATION)
    lead = save_record_type(
        document={"name": "Lead", "_integrationId": str(application.pk), "fields": LEAD_FIELDS}
    )
    for data in SAMPLE_LEADS:
        create_record(record_type=lead, data=data, user=owner)
    Operation.objects.create(
        application=application,
        name="Register Lead",
        record_type=lead,
        action=Operation.Action.CREATE,
        rest_execute=True,
        description="Creates a lead. POST the fields; RecordID null.",
    )
    Operation.objects.create(
        application=application,
        name="Update Lead Status",
        record_type=lead,
        action=Operation.Action.UPDATE,
        rest_execute=True,
        description="Changes a lead: RecordID and the fields to change, e.g. Rating.",
    )
    View.objects.create(
        application=application,
        name="All Leads",
        record_type=lead,
        rest_query=True,
        ordering=[{"field": "Company", "direction": "asc"}],
    )
    View.objects.create(
        application=application,
        name="Leads by Rating",
        record_type=lead,
        rest_query=True,
        fields=["Company", "Contact", "Email", "Rating"],
        filters=[{"field": "Rating", "op": "eq", "parameter": "rating"}],
        parameters=[{"name": "rating", "type": "text", "required": True}],
    )
    account = User.objects.create_user(
        ACCOUNT, account_type=User.AccountType.INTEGRATION, password=None
    )
    callers = Role.objects.filter(name="Integration callers").first()
    if callers is not None:
        callers.members.add(account)
    configure_surface(execute=True, query=True, integration_accounts=[account])
    key = create_api_key(owner=account, label="Lead Registration demo").plaintext
    return Demo(application=application, account=account, key=key)
