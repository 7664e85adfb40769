"""Key versions; every existing key gets version 1 holding its configuration as it is."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def first_versions(apps, schema_editor):
    ApiKey = apps.get_model("apikeys", "ApiKey")
    KeyVersion = apps.get_model("apikeys", "KeyVersion")
    for key in ApiKey.objects.filter(current_version__isnull=True).iterator():
        version = KeyVersion.objects.create(api_key=key, number=1, arch=key.arch, features=key.features,
                                            policy=key.policy, config=key.config, source="initial")
        ApiKey.objects.filter(pk=key.pk).update(current_version=version)


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0004_key_governance'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='KeyVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('arch', models.CharField(choices=[('single-llm', 'Single LLM'), ('dual-llm', 'Dual LLM')], max_length=16, verbose_name='architecture')),
                ('features', models.JSONField(blank=True, default=dict)),
                ('policy', models.JSONField(blank=True, default=dict)),
                ('config', models.JSONField(blank=True, default=dict)),
                ('saved_at', models.DateTimeField(auto_now_add=True)),
                ('source', models.CharField(choices=[('created', 'Created'), ('initial', 'Configuration before versions were kept'), ('dashboard', 'Saved in the dashboard'), ('api', 'Saved through the management API'), ('revert', 'Reverted')], default='dashboard', max_length=16)),
                ('reverted_from', models.PositiveIntegerField(blank=True, help_text='The number this one restored.', null=True)),
                ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='apikeys.apikey')),
                ('saved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['api_key', '-number'],
            },
        ),
        migrations.AddField(
            model_name='apikey',
            name='current_version',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='apikeys.keyversion'),
        ),
        migrations.AddConstraint(
            model_name='keyversion',
            constraint=models.UniqueConstraint(fields=('api_key', 'number'), name='key_version_number'),
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
    ]
