import pytest
from rest_framework.test import APIClient

from apps.accounts.privileges import Privilege
from tests.conftest import grant


@pytest.fixture
def manager(key_client, member, callers_role) -> APIClient:
    """A key of an account holding manage_flows (and view_executions)."""
    grant(callers_role, Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def reader(key_client, member, callers_role) -> APIClient:
    """A key of an account that may read (view_executions) but not manage flows."""
    grant(callers_role, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def bystander(key_client, member) -> APIClient:
    """A key of an account with neither manage_flows nor view_executions."""
    return key_client(member)
