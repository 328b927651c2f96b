import json
import secrets
from urllib.parse import quote

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.accounts.services import create_api_key
from apps.core.startup import leave_notice
from apps.surface.demo import install_lead_registration

DEMO_FIXTURE = settings.BASE_DIR / "fixtures" / "demo.json"


class Command(BaseCommand):
    help = (
        "Prepare a local installation. On a fresh database (no account at all) it "
        "creates the account 'admin' and loads the demo data; afterwards it changes nothing, "
        "so a builder's edits survive the next `make run`."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--when-served",
            action="store_true",
            help="Leave the password and the demo key for `serve` to print once it is up "
            "(make run), instead of printing them now.",
        )

    def handle(self, *args, **options):
        fresh = not User.objects.exists()  # a database nobody has used yet
        if not fresh:
            self.stdout.write("Accounts exist already: nothing to prepare.")
            return
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser(username="admin", email="", password=password)
        told = [
            self.style.SUCCESS(
                f"Created the admin account 'admin' with password {password}\n"
                "It is shown only this once. Change it with: "
                ".venv/bin/python manage.py changepassword admin"
            )
        ]
        # The key README's curls call as $FLOWSITE_KEY (the management API, flows, jobs).
        variables = {
            "BASE": f"http://{settings.HOST}:{settings.PORT}",
            "FLOWSITE_KEY": create_api_key(owner=admin, label="make run").plaintext,
        }
        demo = None
        if DEMO_FIXTURE.exists():
            call_command("loaddata", str(DEMO_FIXTURE), verbosity=0)
            demo = install_lead_registration(owner=admin)
            variables["DEMO_KEY"] = demo.key
        told.append(
            "API keys, shown only this once: FLOWSITE_KEY is admin's"
            + (", DEMO_KEY the demo's integration account's" if demo else "")
            + ". For README's curls, paste:\n  export "
            + " ".join(f"{name}={value}" for name, value in variables.items())
        )
        if demo is not None:
            told.append(self._demo_instructions(demo))
        if options["when_served"]:
            leave_notice("\n".join(told) + "\n")
            self.stdout.write(
                "Created the admin account: its password is printed once Flowsite is up."
            )
        else:
            self.stdout.write("\n".join(told))

    @staticmethod
    def _demo_instructions(demo) -> str:
        app = quote(demo.application.name)
        auth = '-H "Authorization: Bearer $DEMO_KEY"'
        lead = json.dumps(
            {
                "RecordID": None,
                "ExternalTransactionId": "demo-1",
                "Company": "Wayne Enterprises",
                "Contact": "Lucius Fox",
                "Email": "lucius@wayne.example",
                "Rating": {"Selection": "Hot"},
            }
        )
        return (
            f"Loaded the demo application {demo.application.name!r}. Its integration account "
            f"{demo.account.get_username()!r} may call Execute() and Query() (the surface is "
            "on for the demo; without the demo it is off) with DEMO_KEY. Try:\n"
            f'  curl {auth} "$BASE/api/rest/query/{app}/Leads%20by%20Rating?rating=Hot"\n'
            f"  curl -X POST {auth} -H 'Content-Type: application/json' -d '{lead}' "
            f'"$BASE/api/rest/execute/{app}/Register%20Lead"'
        )
