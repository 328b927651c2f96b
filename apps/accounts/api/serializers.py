from rest_framework import serializers


class ApiKeySummarySerializer(serializers.Serializer):
    prefix = serializers.CharField(help_text="The non-secret start of the key.")
    label = serializers.CharField()
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    accountType = serializers.ChoiceField(source="account_type", choices=["regular", "integration"])
    isSuperuser = serializers.BooleanField(source="is_superuser")
    roles = serializers.ListField(child=serializers.CharField())
    privileges = serializers.ListField(
        child=serializers.CharField(),
        help_text="Flowsite privileges held through roles, direct permissions or superuser.",
    )
    authentication = serializers.ChoiceField(choices=["apiKey", "session"])
    apiKey = ApiKeySummarySerializer(allow_null=True, help_text="The key used for this call.")


EXPIRES_AT = serializers.DateTimeField()  # stateless: formats like the field above


def me_document(user, *, api_key, roles: list[str], privileges: list[str]) -> dict:
    """What MeSerializer gives for these values, built directly: a serializer deep-copies
    its fields on every call, a third of a /api/v1/me call (issue "Hot path")."""
    return {
        "id": user.pk,
        "username": user.username,
        "accountType": user.account_type,
        "isSuperuser": user.is_superuser,
        "roles": roles,
        "privileges": privileges,
        "authentication": "apiKey" if api_key else "session",
        "apiKey": None
        if api_key is None
        else {
            "prefix": api_key.prefix,
            "label": api_key.label,
            "expiresAt": None
            if api_key.expires_at is None
            else EXPIRES_AT.to_representation(api_key.expires_at),
        },
    }
