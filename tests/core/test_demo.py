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
        HTTP_AUTHORIZATION="Bearer "
        + create_api_key(owner=User.objects.get(username="admin")).plaintext
    )
    response = client.get("/api/resources/greeting?name=Leor")
    assert response.status_code == 200
    assert response.json() == "Hello Leor"


def test_the_lead_registration_demo_answers_query_and_execute_with_the_printed_key(db):
    out = StringIO()
    call_command("bootstrap", stdout=out)
    text = out.getvalue()
    key = next(line.strip() for line in text.splitlines() if line.strip().startswith("fs_"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    hot = client.get("/api/rest/query/Lead%20Registration/Leads%20by%20Rating?rating=Hot")
    assert hot.status_code == 200, hot.json()
    assert [lead["Company"] for lead in hot.json()] == ["Acme Ltd"]
    payload = {
        "RecordID": None,
        "ExternalTransactionId": "demo-1",
        "Company": "Wayne Enterprises",
        "Contact": "Lucius Fox",
        "Email": "lucius@wayne.example",
        "Rating": {"Selection": "Hot"},
    }
    url = "/api/rest/execute/Lead%20Registration/Register%20Lead"
    created = client.post(url, payload, format="json")
    assert created.status_code == 201, created.json()
    assert client.post(url, payload, format="json").json() == created.json()  # replayed
    everyone = client.get("/api/rest/query/Lead%20Registration/All%20Leads").json()
    assert len(everyone) == 5
    assert "/api/rest/query/Lead%20Registration/Leads%20by%20Rating?rating=Hot" in text
