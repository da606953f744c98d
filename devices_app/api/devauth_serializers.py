from __future__ import annotations

from rest_framework import serializers

from devices_app.models import AuthSet, Device
from devices_app.states import AuthSetStatus, DeviceStatus


class AuthSetOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuthSet
        fields = ["id", "identity_data", "pubkey", "ts", "status"]


class DeviceOutputSerializer(serializers.ModelSerializer):
    auth_sets = AuthSetOutputSerializer(many=True, read_only=True)
    decommissioning = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "identity_data",
            "status",
            "decommissioning",
            "created_ts",
            "updated_ts",
            "check_in_time",
            "auth_sets",
        ]

    def get_decommissioning(self, device: Device) -> bool:
        return False


class AuthSetStatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[AuthSetStatus.ACCEPTED, AuthSetStatus.REJECTED, AuthSetStatus.PENDING]
    )


class PreauthorizeInputSerializer(serializers.Serializer):
    identity_data = serializers.DictField(allow_empty=False)
    pubkey = serializers.CharField(max_length=16384)
    force = serializers.BooleanField(default=False)


# Decommissioned devices are gone from the management API (Mender deletes them): no such filter.
DEVICE_STATUS_FILTERS = [
    status.value for status in DeviceStatus if status != DeviceStatus.DECOMMISSIONED
]
