from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import keys
from apps.accounts.models import ApiKey
from apps.accounts.services import create_api_key, resolve_api_key, revoke_api_keys

ME = "/api/v1/me"


def client_with(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_a_new_key_has_the_fs_prefix_and_32_random_bytes(member):
    issued = create_api_key(owner=member)
    assert issued.plaintext.startswith("fs_")
    assert len(issued.plaintext) == 3 + 43  # token_urlsafe(32)
    assert issued.api_key.prefix == issued.plaintext[:12]


@pytest.mark.parametrize("scheme", ["Bearer ", "bearer ", ""])
def test_bearer_and_bare_authorization_both_authenticate(member, scheme):
    plaintext = create_api_key(owner=member).plaintext
    response = client_with(f"{scheme}{plaintext}").get(ME)
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "member"
    assert response.json()["authentication"] == "apiKey"


@pytest.mark.django_db(transaction=True)
def test_the_plaintext_of_a_key_is_nowhere_in_the_database(member):
    plaintext = create_api_key(owner=member, label="ERP").plaintext
    client_with(f"Bearer {plaintext}").get(ME)  # use it too: last_used is written

    secret_part = plaintext[12:]  # what is not the displayed prefix
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(repr(row) for row in cursor.fetchall())
    text = "\n".join(dump)
    assert keys.digest(plaintext) in text  # the dump did cover the key table
    assert plaintext not in text
    assert secret_part not in text


def refused_answers(member):
    expired = create_api_key(owner=member, expires_at=timezone.now() - timedelta(seconds=1))
    revoked = create_api_key(owner=member)
    revoke_api_keys(queryset=ApiKey.objects.filter(pk=revoked.api_key.pk))
    unknown = keys.generate_key()
    return {
        "expired": expired.plaintext,
        "revoked": revoked.plaintext,
        "unknown": unknown,
        "malformed": "fs_short",
        "not a key": "hello",
        # two values in one header (found by an outside probe: it said none was sent)
        "two keys": f"{unknown}, Bearer {unknown}",
    }


def test_expired_revoked_unknown_and_malformed_keys_get_the_same_401(member):
    answers = []
    for name, key in refused_answers(member).items():
        response = client_with(f"Bearer {key}").get(ME)
        assert response.status_code == 401, name
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"] == 'Bearer realm="flowsite"'
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0]["detail"] == "Invalid API key: it is unknown, malformed, expired or revoked."


def test_a_key_of_an_inactive_account_is_refused_like_an_unknown_key(member):
    plaintext = create_api_key(owner=member).plaintext
    member.is_active = False
    member.save()
    assert client_with(f"Bearer {plaintext}").get(ME).status_code == 401


def test_an_account_without_use_api_key_is_told_which_privilege_it_lacks(outsider):
    plaintext = create_api_key(owner=outsider).plaintext
    response = client_with(f"Bearer {plaintext}").get(ME)
    assert response.status_code == 403
    body = response.json()
    assert body["privilege"] == "use_api_key"
    assert "use_api_key" in body["detail"]


def test_another_authorization_scheme_is_left_to_other_authentication(member):
    response = client_with("Basic bWVtYmVyOnNlY3JldA==").get(ME)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def limit_failures(settings, rate: str) -> None:
    # A day's window: a test never straddles a window boundary (the counters reset there).
    settings.FLOWSITE_THROTTLE_RATES = {**settings.FLOWSITE_THROTTLE_RATES, "auth_failure": rate}


def test_guessing_keys_is_rate_limited_per_client(member, settings):
    limit_failures(settings, "3/day")
    guesses = [client_with(f"Bearer {keys.generate_key()}").get(ME) for _ in range(5)]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429, 429]
    assert int(guesses[-1]["Retry-After"]) >= 1
    assert guesses[-1]["Content-Type"] == "application/problem+json"


def test_malformed_keys_count_against_the_client_too(member, settings):
    limit_failures(settings, "2/day")
    statuses = [client_with(f"Bearer {junk}").get(ME).status_code for junk in "abc"]
    assert statuses == [401, 401, 429]


def test_a_valid_key_gets_through_after_60_bad_keys_from_the_same_client(member, settings):
    assert settings.FLOWSITE_THROTTLE_RATES["auth_failure"] == "60/min"  # the default
    limit_failures(settings, "60/day")
    plaintext = create_api_key(owner=member).plaintext
    bad = [client_with(f"Bearer {keys.generate_key()}").get(ME) for _ in range(61)]
    assert {r.status_code for r in bad[:60]} == {401}
    assert bad[60].status_code == 429
    assert int(bad[60]["Retry-After"]) >= 1

    response = client_with(f"Bearer {plaintext}").get(ME)
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "member"
    # …and the client's bad keys are still refused.
    assert client_with(f"Bearer {keys.generate_key()}").get(ME).status_code == 429


def test_behind_an_untrusted_proxy_every_client_shares_an_address_yet_valid_keys_pass(
    member, settings
):
    # FLOWSITE_TRUSTED_PROXIES=0 behind a proxy: every caller is the proxy's address.
    limit_failures(settings, "3/day")
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(5):
        client_with(f"Bearer {keys.generate_key()}").get(
            ME, HTTP_X_FORWARDED_FOR="6.6.6.6", **proxy
        )
    for user_agent in ("ERP", "CRM"):
        plaintext = create_api_key(owner=member, label=user_agent).plaintext
        response = client_with(f"Bearer {plaintext}").get(ME, HTTP_USER_AGENT=user_agent, **proxy)
        assert response.status_code == 200


def guess_at_prefix(prefix: str, address: str):
    """A well-formed key with this prefix and a random rest, from its own address."""
    rest = keys.generate_key()[len(prefix) :]
    return client_with(f"Bearer {prefix}{rest}").get(ME, REMOTE_ADDR=address)


def test_failures_count_per_key_prefix_across_addresses(member, settings):
    limit_failures(settings, "3/day")
    prefix = keys.lookup_prefix(keys.generate_key())
    statuses = [guess_at_prefix(prefix, f"192.0.2.{n}").status_code for n in range(1, 6)]
    assert statuses == [401, 401, 401, 429, 429]
    # Another prefix from a new address is not affected.
    other = keys.lookup_prefix(keys.generate_key())
    assert guess_at_prefix(other, "192.0.2.99").status_code == 401


def test_the_key_behind_a_prefix_under_attack_still_gets_through(member, settings):
    limit_failures(settings, "3/day")
    plaintext = create_api_key(owner=member).plaintext
    prefix = keys.lookup_prefix(plaintext)
    assert [guess_at_prefix(prefix, f"192.0.2.{n}").status_code for n in range(1, 6)][-1] == 429
    response = client_with(f"Bearer {plaintext}").get(ME, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 200


def test_the_limit_does_not_tell_whether_a_key_prefix_exists(member, settings):
    limit_failures(settings, "3/day")
    existing = keys.lookup_prefix(create_api_key(owner=member).plaintext)
    unknown = keys.lookup_prefix(keys.generate_key())

    def answers(prefix: str, network: str) -> list[tuple]:
        responses = [guess_at_prefix(prefix, f"{network}.{n}") for n in range(1, 6)]
        # A 429's detail and Retry-After count down seconds: compare what is not a clock.
        return [
            (r.status_code, r.json()["type"], r.json()["title"], "Retry-After" in r)
            + ((r.json()["detail"],) if r.status_code == 401 else ())
            for r in responses
        ]

    at_existing, at_unknown = answers(existing, "198.51.100"), answers(unknown, "203.0.113")
    assert [answer[0] for answer in at_existing] == [401, 401, 401, 429, 429]
    assert at_existing == at_unknown


def test_last_used_is_written_at_most_once_a_minute(member, django_assert_num_queries):
    issued = create_api_key(owner=member)
    first = resolve_api_key(issued.plaintext)
    assert first.last_used_at is not None
    with django_assert_num_queries(1):  # the lookup only: no second write within a minute
        again = resolve_api_key(issued.plaintext)
    assert again.last_used_at == first.last_used_at

    ApiKey.objects.filter(pk=issued.api_key.pk).update(
        last_used_at=timezone.now() - timedelta(minutes=2)
    )
    with django_assert_num_queries(2):
        later = resolve_api_key(issued.plaintext)
    assert later.last_used_at > first.last_used_at
