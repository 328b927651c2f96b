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
