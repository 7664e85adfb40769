"""Default prices per 1M tokens (those of the hosted product's dashboard); operators change them in the admin."""

from decimal import Decimal

from django.db import migrations

DEFAULT_PRICES = [
    # code, kind, label, USD per 1M tokens
    ("base", "base", "Base", "0.10"),
    ("single-llm", "arch", "Single LLM", "0.10"),
    ("dual-llm", "arch", "Dual LLM", "0.20"),
    ("pii_redaction", "defence", "PII redaction", "0.01"),
    ("toxicity_filter", "defence", "Toxicity filter", "0.01"),
    ("healthcare_topic_guardrail", "defence", "Healthcare topic guardrail", "0.01"),
    ("finance_topic_guardrail", "defence", "Finance topic guardrail", "0.01"),
    ("url_blocker", "defence", "URL blocker", "0.00"),
    ("file_blocker", "defence", "File blocker", "0.00"),
]


def seed(apps, schema_editor):
    Price = apps.get_model("agent_sessions", "Price")
    for code, kind, label, usd in DEFAULT_PRICES:
        Price.objects.get_or_create(code=code, defaults={"kind": kind, "label": label,
                                                         "usd_per_million": Decimal(usd)})


class Migration(migrations.Migration):

    dependencies = [("agent_sessions", "0002_session_log")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
