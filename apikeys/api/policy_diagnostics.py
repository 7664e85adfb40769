"""``/api/v1/policies/diagnostics``: what the dashboard's policy editor shows while one types, for scripts and
other editors (position, a sentence for people, the expected tokens; a missing ``;`` where it is missing)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from relay.sqrt.diagnostics import MAX_POLICY_CHARS, diagnose

from .common import ApiViewMixin, UserThrottle


class DiagnosticsRequestSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_POLICY_CHARS)
    language = serializers.ChoiceField(choices=[("sqrt", "SQRT"), ("cedar", "Cedar")], default="sqrt")


class PositionSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based")
    column = serializers.IntegerField(help_text="1-based, in characters")


class DiagnosticSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What is wrong, written for people.")
    line = serializers.IntegerField(help_text="Where it is (for a missing ';': right after the statement).")
    column = serializers.IntegerField()
    to = PositionSerializer(help_text="End (exclusive) of the stretch to underline.")
    expected = serializers.ListField(child=serializers.CharField(), help_text="Tokens that would fit there.")
    severity = serializers.CharField()
    language = serializers.CharField()
    detail = serializers.CharField(help_text="The compiler's own wording.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = PositionSerializer(help_text="Start of the stretch to underline.")
        return fields


class DiagnosticsResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    diagnostics = DiagnosticSerializer(many=True)


class PolicyDiagnosticsView(ApiViewMixin, APIView):
    throttle_classes = [UserThrottle]

    @extend_schema(
        summary="Diagnose a policy",
        request=DiagnosticsRequestSerializer,
        responses={200: DiagnosticsResponseSerializer},
        description="Compiles the code as the relay would and explains what is wrong for an editor: "
        "position, the stretch to underline, a sentence for people and the expected "
        "tokens. A valid policy gives `valid: true` and no diagnostics.",
    )
    def post(self, request):
        ser = DiagnosticsRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        found = diagnose(ser.validated_data["code"], ser.validated_data["language"])
        return Response({"valid": not found, "diagnostics": [d.as_dict() for d in found]})
