import pytest
from rest_framework.test import APIClient

from apps.accounts.privileges import Privilege
from apps.flows.models import Export, Import
from tests.conftest import grant


@pytest.fixture
def manager(key_client, member, callers_role) -> APIClient:
    """A key of an account holding manage_flows, run_flows and view_executions."""
    grant(callers_role, Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def stats_export(local_api) -> Export:
    return Export.objects.create(name="Trialers", connection=local_api, relative_uri="/trialers")


@pytest.fixture
def stats_import(local_api) -> Import:
    return Import.objects.create(name="Post stats", connection=local_api, relative_uri="/stats")
