from django.core.management.base import BaseCommand, CommandError

from apps.accounts import services
from apps.accounts.models import User
from apps.accounts.privileges import Privilege


class Command(BaseCommand):
    help = "Create an API key for USERNAME. The key is printed once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--label", default="", help="What the key is for.")
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="Expire after N days."
        )

    def handle(self, *args, username, label, expires_in_days, **options):
        try:
            owner = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No account is named {username!r}.") from None
        if expires_in_days is not None and expires_in_days <= 0:
            raise CommandError("--expires-in-days must be a positive number of days.")
        issued = services.create_api_key(
            owner=owner, label=label, expires_at=services.expiry_in_days(expires_in_days)
        )
        expiry = issued.api_key.expires_at.isoformat() if issued.api_key.expires_at else "never"
        self.stdout.write(f"API key {issued.api_key.prefix}… for {owner} (expires: {expiry}).")
        if not owner.has_perm(Privilege.USE_API_KEY.perm):
            self.stdout.write(
                self.style.WARNING(
                    f"{owner} lacks the privilege 'use_api_key': the key is refused until a "
                    "role grants it."
                )
            )
        self.stdout.write("Copy it now; it is not shown again:")
        self.stdout.write(issued.plaintext)
