"""The Lead Registration demo: a data table, operations and views on the surface, an
integration account with a key, and a few leads, so Execute() and Query() answer at once.

Installed by `manage.py bootstrap` on a fresh database, after fixtures/demo.json (the
application, the roles and Axway's greeting flow). It also adds two flows that read the
leads through connections of the data-tables kind, so that README's curls of flow
endpoints, of the management API and of jobs run against it as written: their ids on a
fresh database are the ones README uses (tests/core/test_readme_curls.py holds that).
"""

from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.services import create_api_key
from apps.flows.models import Application, Connection, Export, Flow, Script
from apps.flows.pipeline import pipeline_errors
from apps.flows.services import save_flow
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


# The flow "lead" answers GET /api/resources/lead?company=…: `check` refuses a call without
# one company name through error() (400), a lookup finds the lead, `answer` returns it or
# a 404 of its own (README's examples of a flow's answers).
LEAD = """function check(ctx) {
  var company = ctx.trigger.args.request.query.company;
  if (typeof company !== 'string' || !company.trim()) {
    error('Give the company of a lead: ?company=Acme%20Ltd', 400);
  }
  return ctx.records;
}

function answer(ctx) {
  var found = ctx.records[0].found;
  if (!found.length) return {statusCode: 404, body: {message: 'no such lead'}};
  return {statusCode: 200, body: found[0]};
}
"""
DIGEST = """function main(ctx) {
  return ctx.records.map(function (lead) {
    return {Company: lead.Company, Contact: lead.Contact, Rating: lead.Rating};
  });
}
"""


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
    _install_lead_flows(application, lead)
    configure_surface(execute=True, query=True, integration_accounts=[account])
    key = create_api_key(owner=account, label="Lead Registration demo").plaintext
    return Demo(application=application, account=account, key=key)


def _saved(instance):
    instance.full_clean()
    instance.save()
    return instance


def _install_lead_flows(application: Application, lead) -> None:
    """Two connections to the data tables (the second one to try clone and
    replaceConnection with), the flow "Lead digest" (a page generator reading leads of a
    rating) and the flow "lead" (GET /api/resources/lead?company=…: a check, a lookup, an
    answer)."""
    tables = _saved(Connection(name="Flowsite data tables", type=Connection.Type.RECORDS))
    _saved(Connection(name="Flowsite data tables (spare)", type=Connection.Type.RECORDS))
    by_rating = _saved(
        Export(
            application=application,
            name="Leads by rating",
            connection=tables,
            records={
                "_recordTypeId": str(lead.pk),
                "filters": [{"field": "Rating", "op": "eq", "value": "{{variables.rating}}"}],
                "ordering": [{"field": "Company", "direction": "asc"}],
            },
        )
    )
    by_company = _saved(
        Export(
            application=application,
            name="Lead by company",
            connection=tables,
            records={
                "_recordTypeId": str(lead.pk),
                "filters": [
                    {
                        "field": "Company",
                        "op": "eq",
                        "value": "{{trigger.args.request.query.company}}",
                    }
                ],
            },
        )
    )
    digest = _saved(Script(application=application, name="digest", content=DIGEST))
    lead_script = _saved(Script(application=application, name="lead", content=LEAD))
    flows = [
        Flow(
            application=application,
            name="Lead digest",
            description="The leads of one rating (variable rating), company and contact only.",
            page_generators=[{"_exportId": str(by_rating.pk)}],
            page_processors=[{"type": "script", "_scriptId": str(digest.pk)}],
            variables={"rating": "Hot"},
        ),
        Flow(
            application=application,
            name="lead",
            description="GET /api/resources/lead?company=…: the lead of that company, or 404.",
            page_processors=[
                {"type": "script", "_scriptId": str(lead_script.pk), "function": "check"},
                {
                    "type": "export",
                    "_exportId": str(by_company.pk),
                    "responseMapping": {"fields": [{"extract": "data", "generate": "found"}]},
                },
                {"type": "script", "_scriptId": str(lead_script.pk), "function": "answer"},
            ],
            api={"enabled": True, "method": "GET", "path": "/lead", "mode": "sync"},
        ),
    ]
    for flow in flows:
        flow.full_clean()
        problems = pipeline_errors(
            flow.page_generators, flow.page_processors, application_id=application.pk
        )
        if problems:
            raise ValueError(f"The demo flow {flow.name} is broken: {problems}")
        save_flow(flow=flow)
