"""Admin sign-in: one answer for every refusal, and a lockout per username and client IP."""

import re

import pytest
from axes.models import AccessAttempt

LOGIN = "/admin/login/?next=/admin/"


def login(client, username: str, password: str, address: str = "192.0.2.1", **headers):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def refusal(response) -> str:
    """The error the login page shows."""
    errors = re.findall(r'<p class="errornote">\s*(.*?)\s*</p>', response.content.decode(), re.S)
    assert len(errors) == 1, response.content.decode()
    return errors[0]


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def limit(settings) -> int:
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def test_a_regular_staff_account_signs_in(client, owner):
    response = login(client, "owner", "owner-pass-123")
    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/"])
def test_a_sign_in_sent_elsewhere_lands_in_the_studio(client, owner, elsewhere):
    """The redirect to another site is refused; it landed on /accounts/profile/, a 404."""
    response = client.post(
        f"/admin/login/?next={elsewhere}", {"username": "owner", "password": "owner-pass-123"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_wrong_password_is_refused_with_the_one_message(client, owner):
    response = login(client, "owner", "wrong")
    assert response.status_code == 200
    assert refusal(response).startswith("Please enter the correct username and password")
    assert not signed_in(client)


def test_an_integration_account_with_its_right_password_gets_the_wrong_password_answer(
    client, integration
):
    integration.is_staff = True  # even a staff flag does not let it in
    integration.save()
    right = login(client, "erp-sync", "integration-pass-123")
    wrong = login(client, "erp-sync", "not-its-password")
    assert (right.status_code, refusal(right)) == (wrong.status_code, refusal(wrong))
    assert "integration" not in right.content.decode().lower()
    assert not signed_in(client)


@pytest.mark.parametrize("kind", ["inactive", "not staff", "unknown user"])
def test_every_other_refusal_gets_the_same_message(client, outsider, kind):
    if kind == "inactive":
        outsider.is_active = False
        outsider.save()
    if kind == "not staff":
        outsider.is_staff = False
        outsider.save()
    username = "nobody" if kind == "unknown user" else "outsider"
    wrong = login(client, "owner-less", "wrong")
    right = login(client, username, "outsider-pass-123")
    assert (right.status_code, refusal(right)) == (wrong.status_code, refusal(wrong))


def test_wrong_passwords_lock_the_username_at_that_address_out(client, owner, member, limit):
    answers = [login(client, "owner", f"guess-{n}") for n in range(limit)]
    message = refusal(answers[0])
    assert [a.status_code for a in answers] == [200] * (limit - 1) + [429]
    assert int(answers[-1]["Retry-After"]) > 0

    # Locked out: the right password is refused, with the same message, and not checked.
    right = login(client, "owner", "owner-pass-123")
    assert right.status_code == 429
    assert refusal(right) == message
    assert not signed_in(client)

    # The lockout is per username and address together: the same user from another
    # address, and another user from the same address, still sign in.
    assert login(client, "owner", "owner-pass-123", address="198.51.100.7").status_code == 302
    client.logout()
    assert login(client, "member", "member-pass-123").status_code == 302
    client.logout()
    assert login(client, "member", "member-pass-123", address="203.0.113.9").status_code == 302


def test_an_integration_accounts_right_password_counts_like_a_wrong_one(client, integration, limit):
    answers = [login(client, "erp-sync", "integration-pass-123") for _ in range(limit + 1)]
    assert [a.status_code for a in answers] == [200] * (limit - 1) + [429, 429]
    assert len({refusal(a) for a in answers}) == 1


def test_a_lockout_is_kept_in_the_database_where_an_admin_clears_it(
    client, admin_client, owner, limit
):
    for n in range(limit):
        login(client, "owner", f"guess-{n}")
    assert login(client, "owner", "owner-pass-123").status_code == 429
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "192.0.2.1" in listing.content.decode()

    AccessAttempt.objects.filter(username="owner").delete()  # what the admin's delete does
    assert login(client, "owner", "owner-pass-123").status_code == 302


def test_a_successful_sign_in_clears_earlier_failures(client, owner, limit):
    for n in range(limit - 1):
        login(client, "owner", f"guess-{n}")
    assert login(client, "owner", "owner-pass-123").status_code == 302
    client.logout()
    answers = [login(client, "owner", f"again-{n}") for n in range(limit - 1)]
    assert {a.status_code for a in answers} == {200}


def forwarded(client, username: str, password: str, client_address: str):
    # Through one proxy at 10.0.0.1, which appends the address it saw.
    return login(
        client, username, password, address="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address
    )


def test_behind_a_trusted_proxy_the_lockout_is_per_forwarded_client(client, owner, limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for n in range(limit):
        forwarded(client, "owner", f"guess-{n}", "198.51.100.1")
    assert forwarded(client, "owner", "owner-pass-123", "198.51.100.1").status_code == 429
    assert forwarded(client, "owner", "owner-pass-123", "198.51.100.2").status_code == 302
    assert AccessAttempt.objects.get().ip_address == "198.51.100.1"


def test_without_trusted_proxies_a_forwarded_address_is_ignored(client, owner, limit):
    for n in range(limit):
        forwarded(client, "owner", f"guess-{n}", f"198.51.100.{n}")
    assert forwarded(client, "owner", "owner-pass-123", "198.51.100.99").status_code == 429
    assert AccessAttempt.objects.get().ip_address == "10.0.0.1"


def test_an_address_that_is_not_one_is_stored_as_none(client, owner, settings):
    # A proxy count higher than the real chain lets the client's own header through.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 2}
    response = forwarded(client, "owner", "wrong", "not-an-address")
    assert response.status_code == 200
    assert AccessAttempt.objects.get().ip_address is None


def test_the_default_limit_and_lockout(settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
