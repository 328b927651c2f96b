from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import create_api_key


def test_bootstrap_creates_the_admin_once_and_the_demo_answers(db):
    out = StringIO()
    call_command("bootstrap", stdout=out)
    assert "Created the admin account 'admin' with password" in out.getvalue()
    call_command("bootstrap", stdout=(again := StringIO()))
    assert "exist already" in again.getvalue()
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=User.objects.get()).plaintext}"
    )
    response = client.get("/api/resources/greeting?name=Leor")
    assert response.status_code == 200
    assert response.json() == "Hello Leor"
