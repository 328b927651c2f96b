import pytest

from apps.flows.models import Export, Import


@pytest.fixture
def stats_export(local_api) -> Export:
    return Export.objects.create(name="Trialers", connection=local_api, relative_uri="/trialers")


@pytest.fixture
def stats_import(local_api) -> Import:
    return Import.objects.create(name="Post stats", connection=local_api, relative_uri="/stats")
