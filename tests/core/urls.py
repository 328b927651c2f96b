"""The real URLs plus a few views that exist only to exercise error handling."""

from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from flowsite.urls import urlpatterns as flowsite_urlpatterns


class ContactSerializer(serializers.Serializer):
    name = serializers.CharField()
    address = serializers.DictField(child=serializers.CharField(max_length=5))
    tags = serializers.ListField(child=serializers.IntegerField())


class EchoView(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class BoomView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals: password=hunter2")


def plain_boom(request):
    raise ValueError("plain view failure")


def read_only_database(request):
    raise OperationalError("attempt to write a readonly database")


def read_only_transaction(request):
    """A write in a transaction PostgreSQL runs read-only, as on a replica after a
    failover: the driver calls it an InternalError (state 25006), not an OperationalError."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("CREATE TEMPORARY TABLE never_made (id int)")
    return HttpResponse("written")


def locked_table(request):
    """A read of the runs table while another session holds it locked."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '200ms'")  # the product's is 10 s
        cursor.execute("SELECT count(*) FROM executions_execution")
    return HttpResponse("read")


def plain_ok(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test/echo", EchoView.as_view()),
    path("api/test/boom", BoomView.as_view()),
    path("api/test/plain-boom", plain_boom),
    path("api/test/read-only-database", read_only_database),
    path("api/test/read-only-transaction", read_only_transaction),
    path("api/test/locked-table", locked_table),
    path("api/test/plain", plain_ok),
    *flowsite_urlpatterns,
]
