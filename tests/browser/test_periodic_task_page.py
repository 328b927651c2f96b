"""django-celery-beat's periodic task page in Chromium under the Content-Security-Policy:
its script (a static file of ours now, not the package's inline one) still says the
chosen crontab in words."""

import pytest
from django_celery_beat.models import CrontabSchedule

from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_the_chosen_crontab_is_said_in_words(page, live_server):
    crontab = CrontabSchedule.objects.create(minute="0", hour="2")
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")

    page.select_option("#id_crontab", str(crontab.pk))

    assert "Translation: At 02:00" in page.inner_text(".field-crontab .help")
    assert not page.is_visible(".field-crontab_translation")
