"""The real URLs plus a few views that exist only to exercise error handling."""

from django.db import OperationalError
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


def plain_ok(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test/echo", EchoView.as_view()),
    path("api/test/boom", BoomView.as_view()),
    path("api/test/plain-boom", plain_boom),
    path("api/test/read-only-database", read_only_database),
    path("api/test/plain", plain_ok),
    *flowsite_urlpatterns,
]
