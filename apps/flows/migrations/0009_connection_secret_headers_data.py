"""Move default headers that are not on the safe list out of plain text into the encrypted
secret headers (an API key hides behind any name: Ocp-Apim-Subscription-Key).

The safe list is frozen here as it was when this migration was written, so a later change
to apps.flows.outbound.auth.SAFE_HEADERS does not change what this migration did. The
reverse puts them back in plain text, so that migrating back loses no header.
"""

from django.db import migrations

from apps.flows import crypto

SAFE_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "prefer",
        "user-agent",
        "x-correlation-id",
        "x-request-id",
    }
)


def encrypt_secret_headers(apps, schema_editor):
    Connection = apps.get_model("flows", "Connection")
    for connection in Connection.objects.iterator():
        headers = connection.headers if isinstance(connection.headers, dict) else {}
        secret = {
            name: value for name, value in headers.items() if name.lower() not in SAFE_HEADERS
        }
        if not secret:
            continue
        connection.headers = {name: v for name, v in headers.items() if name not in secret}
        stored = crypto.decrypt_json(connection.secret_headers_encrypted)
        connection.secret_headers_encrypted = crypto.encrypt_json({**stored, **secret})
        connection.save(update_fields=["headers", "secret_headers_encrypted"])


def restore_plain_headers(apps, schema_editor):
    Connection = apps.get_model("flows", "Connection")
    for connection in Connection.objects.exclude(secret_headers_encrypted="").iterator():
        secret = crypto.decrypt_json(connection.secret_headers_encrypted)
        connection.headers = {**(connection.headers or {}), **secret}
        connection.secret_headers_encrypted = ""
        connection.save(update_fields=["headers", "secret_headers_encrypted"])


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0008_connection_secret_headers"),
    ]

    operations = [
        migrations.RunPython(encrypt_secret_headers, restore_plain_headers),
    ]
