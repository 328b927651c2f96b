"""A key that just authenticated is remembered by its process for at most half a second:
every change to it, its account or its privileges is seen within 1 s (issue "Hot path")."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts import key_cache
from apps.accounts.models import ApiKey, User
from apps.accounts.services import create_api_key, revoke_api_keys

ME = "/api/v1/me"


class Clock:
    """key_cache's monotonic clock, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(key_cache.memory, "seconds", 0.5)  # as in production (tests/conftest.py)
    monkeypatch.setattr(key_cache.memory, "clock", clock)
    key_cache.clear()
    yield clock
    key_cache.clear()


def test_a_key_that_authenticated_is_not_read_again_within_half_a_second(
    member, clock, django_assert_num_queries
):
    plaintext = create_api_key(owner=member).plaintext
    with django_assert_num_queries(3):  # the key and its owner, last used, privileges
        first = key_cache.usable_key(plaintext)
    with django_assert_num_queries(0):
        again = key_cache.usable_key(plaintext)
        assert again.owner.has_perm("accounts.use_api_key")
    assert again.pk == first.pk
    assert again is not first  # each caller its copy
    assert again.owner is not first.owner


def test_a_change_made_elsewhere_is_seen_once_the_entry_is_half_a_second_old(
    member, clock, key_client
):
    issued = create_api_key(owner=member)
    client = key_client(member)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    assert client.get(ME).status_code == 200
    # As another process would: no signal reaches this one.
    ApiKey.objects.filter(pk=issued.api_key.pk).update(revoked_at=timezone.now())
    clock.now += key_cache.SECONDS - 0.01
    assert client.get(ME).status_code == 200  # still remembered (at most SECONDS)
    clock.now += 0.02
    assert client.get(ME).status_code == 401


def test_an_account_deactivated_elsewhere_is_refused_after_half_a_second(member, clock):
    plaintext = create_api_key(owner=member).plaintext
    assert key_cache.usable_key(plaintext) is not None
    User.objects.filter(pk=member.pk).update(is_active=False)
    clock.now += key_cache.SECONDS
    assert key_cache.usable_key(plaintext) is None


def test_changes_made_in_this_process_are_seen_at_once(member, callers_role, clock, key_client):
    client = key_client(member)
    assert client.get(ME).status_code == 200
    callers_role.members.remove(member)  # m2m_changed
    assert client.get(ME).status_code == 403

    callers_role.members.add(member)
    assert client.get(ME).status_code == 200
    member.is_active = False
    member.save()  # post_save
    assert client.get(ME).status_code == 401


def test_a_revoked_key_is_refused_at_once_in_this_process(member, clock):
    issued = create_api_key(owner=member)
    assert key_cache.usable_key(issued.plaintext) is not None
    revoke_api_keys(queryset=ApiKey.objects.filter(pk=issued.api_key.pk))  # QuerySet.update()
    assert key_cache.usable_key(issued.plaintext) is None


def test_a_remembered_key_that_expires_is_refused(member, clock, monkeypatch):
    expires = timezone.now() + timedelta(minutes=5)
    plaintext = create_api_key(owner=member, expires_at=expires).plaintext
    assert key_cache.usable_key(plaintext) is not None
    later = expires + timedelta(seconds=1)
    monkeypatch.setattr(key_cache.timezone, "now", lambda: later)
    assert key_cache.usable_key(plaintext) is None


def test_a_failed_key_is_never_remembered(member, clock, django_assert_num_queries):
    plaintext = create_api_key(owner=member).plaintext
    wrong = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    for _ in range(2):
        with django_assert_num_queries(1):
            assert key_cache.usable_key(wrong) is None
