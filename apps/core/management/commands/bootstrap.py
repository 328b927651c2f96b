import secrets

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.accounts.models import User

DEMO_FIXTURE = settings.BASE_DIR / "fixtures" / "demo.json"


class Command(BaseCommand):
    help = (
        "Prepare a local installation. On a fresh database (no account at all) it "
        "creates the account 'admin' and loads the demo data; afterwards it changes nothing, "
        "so a builder's edits survive the next `make run`."
    )

    def handle(self, *args, **options):
        fresh = not User.objects.exists()  # a database nobody has used yet
        if fresh:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username="admin", email="", password=password)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created the admin account 'admin' with password {password}\n"
                    "It is shown only this once. Change it with: "
                    ".venv/bin/python manage.py changepassword admin"
                )
            )
        else:
            self.stdout.write("Accounts exist already: nothing to prepare.")
        if fresh and DEMO_FIXTURE.exists():
            call_command("loaddata", str(DEMO_FIXTURE), verbosity=0)
            self.stdout.write("Loaded the demo data.")
