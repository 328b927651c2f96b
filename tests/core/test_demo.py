import logging
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import create_api_key
from apps.core.access_log import WithoutStaticFiles
from apps.core.startup import take_notice


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
    export = next(line for line in text.splitlines() if line.strip().startswith("export "))
    variables = dict(pair.split("=", 1) for pair in export.split()[1:])
    key = variables["DEMO_KEY"]
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
    assert '"$BASE/api/rest/query/Lead%20Registration/Leads%20by%20Rating?rating=Hot"' in text
    assert variables["BASE"] == f"http://{settings.HOST}:{settings.PORT}"


def test_bootstrap_prints_a_key_of_admin_for_the_management_api(db):
    out = StringIO()
    call_command("bootstrap", stdout=out)
    export = next(line for line in out.getvalue().splitlines() if "export " in line)
    variables = dict(pair.split("=", 1) for pair in export.split()[1:])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {variables['FLOWSITE_KEY']}")

    me = client.get("/api/v1/me")

    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    flows = client.get("/api/v1/flows").json()
    assert [flow["name"] for flow in flows] == ["greeting", "Lead digest", "lead"]


def test_make_runs_bootstrap_leaves_the_password_for_serve_to_print_last(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("bootstrap", "--when-served", stdout=out)
    assert "password" in out.getvalue()
    notice_file = tmp_path / "first-run-notice.txt"
    assert notice_file.stat().st_mode & 0o777 == 0o600
    assert "with password" not in out.getvalue()

    notice = take_notice()

    assert "Created the admin account 'admin' with password" in notice
    assert "fs_" in notice  # the demo key
    assert not notice_file.exists()
    assert take_notice() is None  # printed once


def test_the_access_log_leaves_out_static_files_that_were_served():
    quiet = WithoutStaticFiles()

    def line(path, status):
        record = logging.LogRecord("granian.access", logging.INFO, "", 0, "%(path)s", (), None)
        record.args = {"path": path, "status": status, "method": "GET"}
        return quiet.filter(record)

    assert not line("/static/admin/css/base.css", 200)
    assert not line("/static/admin/js/core.js", 304)
    assert line("/static/missing.css", 404)
    assert line("/admin/login/", 200)
    assert line("/api/resources/greeting", 500)
