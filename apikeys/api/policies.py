"""``/api/v1/policies/validate`` (compile a SQRT or Cedar policy: the compiler the relay, the headers and the
dashboard use) and ``/api/v1/policies/generate`` (the dashboard's "Generate policy" helper)."""

from __future__ import annotations

import json
import re

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.models import Provider

from .common import ApiViewMixin, FieldErrors, GenerateThrottle, UpstreamFailed, UserThrottle

MAX_CODE = 100_000


class ValidateRequestSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_CODE)
    language = serializers.ChoiceField(choices=[("sqrt", "SQRT"), ("cedar", "Cedar")], default="sqrt")


class PolicyErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    column = serializers.IntegerField()
    message = serializers.CharField()


class ValidateResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = PolicyErrorSerializer(many=True)


class GenerateRequestSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=20_000, help_text="What the policy should allow or deny.")
    tools = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=200,
        help_text="Tool definitions (OpenAI function format, or name/description/parameters).",
    )
    provider = serializers.ChoiceField(
        choices=Provider.choices,
        required=False,
        help_text="Default: the first enabled server-managed credential.",
    )
    model = serializers.CharField(max_length=200, required=False)
    provider_key = serializers.CharField(
        max_length=1000,
        required=False,
        write_only=True,
        help_text="Your own provider key (then provider and model are required).",
    )


class GenerateResponseSerializer(serializers.Serializer):
    policy = serializers.CharField(help_text="SQRT code that compiles; review it before you use it.")


class ValidatePolicyView(ApiViewMixin, APIView):
    @extend_schema(
        summary="Validate a policy",
        request=ValidateRequestSerializer,
        responses={200: ValidateResponseSerializer},
        description="Compiles the code as the relay would; an invalid policy is a 200 with "
        "`valid: false` and its errors' line and column.",
    )
    def post(self, request):
        from relay.sqrt.lint import check_text

        ser = ValidateRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        err = check_text(ser.validated_data["code"], ser.validated_data["language"])
        errors = [] if err is None else [{"line": err.line, "column": err.column, "message": err.message}]
        return Response({"valid": err is None, "errors": errors})


_FIELD = re.compile(r"^(description|tools(?:\[\d+\])?):\s*")


class GeneratePolicyView(ApiViewMixin, APIView):
    throttle_classes = [UserThrottle, GenerateThrottle]

    @extend_schema(
        summary="Generate a policy",
        request=GenerateRequestSerializer,
        responses={200: GenerateResponseSerializer},
        extensions={"x-errors": ["422", "502"]},
        description="Writes a SQRT policy from a description with an LLM (your provider key, or a "
        "server-managed credential); every candidate is compiled, and one that does not "
        "compile is retried. Nothing is saved.",
    )
    def post(self, request):
        from apikeys.policy_generation import GenerationFailed, do_generate_policy

        ser = GenerateRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        try:
            policy = do_generate_policy(
                description=data["description"],
                tools_json=json.dumps(data["tools"]) if data.get("tools") else "",
                provider=data.get("provider") or "",
                api_key=data.get("provider_key") or "",
                model=data.get("model") or "",
            )
        except GenerationFailed as exc:
            message = str(exc)
            if message.startswith("The policy model could not be reached"):
                raise UpstreamFailed(message) from None
            match = _FIELD.match(message)
            field = match.group(1).split("[")[0] if match else None
            if message.startswith("With your own provider key"):
                field = "provider" if not data.get("provider") else "model"
            status_code = 422 if message.startswith("Failed to generate") else 400
            raise FieldErrors(
                [{"field": field, "message": message}],
                status_code=status_code,
                code="generation_failed" if status_code == 422 else "invalid",
            ) from None
        return Response({"policy": policy})
