from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey


def run(*args) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_the_last_line_is_a_working_key(member):
    lines = run("member", "--label", "ci")
    key = lines[-1]
    assert key.startswith("fs_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/me").json()["apiKey"]["label"] == "ci"


def test_expires_in_days_sets_the_expiry(member):
    run("member", "--expires-in-days", "7")
    key = ApiKey.objects.get()
    assert 6.9 < (key.expires_at - key.created_at).total_seconds() / 86400 < 7.1


def test_an_account_without_use_api_key_is_warned(outsider):
    lines = run("outsider")
    assert any("lacks the privilege 'use_api_key'" in line for line in lines)
    assert lines[-1].startswith("fs_")


def test_an_unknown_account_is_an_error(db):
    with pytest.raises(CommandError, match="No account is named 'ghost'"):
        run("ghost")
