# Flowsite is served over WSGI (gunicorn): under ASGI Django cost ~7 ms per request on
# these machines against ~0.3 ms under WSGI (shared/MEASURED.md). Kept for completeness.
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowsite.settings")

application = get_asgi_application()
