# Squashed: the whole schema of the app, and the instance type catalog (nothing was released before).

import django.core.validators
import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models

from builds.catalog import CATALOG


def seed_instance_types(apps, schema_editor):
    InstanceType = apps.get_model("builds", "InstanceType")
    for name, vcpus, memory_mib, description in CATALOG:
        InstanceType.objects.get_or_create(
            name=name, defaults={"vcpus": vcpus, "memory_mib": memory_mib, "queue": name, "description": description}
        )


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='InstanceType',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=63, unique=True)),
                ('vcpus', models.PositiveSmallIntegerField()),
                ('memory_mib', models.PositiveIntegerField()),
                ('queue', models.CharField(default='predict', max_length=63)),
                ('description', models.CharField(blank=True, max_length=255)),
                ('is_active', models.BooleanField(default=True)),
            ],
            options={
                'ordering': ['vcpus', 'memory_mib', 'name'],
            },
        ),
        migrations.CreateModel(
            name='MLModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model_id', models.CharField(max_length=63, unique=True, validators=[django.core.validators.RegexValidator('^(?!new$)[a-z][a-z0-9-]{2,62}$', 'A model id uses lowercase letters, digits and hyphens, starting with a letter, 3 to 63 characters (and is not “new”).')])),
                ('description', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ml_models', to='auth.group')),
            ],
            options={
                'verbose_name': 'model',
                'ordering': ['model_id'],
            },
        ),
        migrations.CreateModel(
            name='Build',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('number', models.PositiveIntegerField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('building', 'Building'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='pending', max_length=16)),
                ('artifact_kind', models.CharField(choices=[('source', 'Source archive'), ('pickle', 'Pickled object')], max_length=16)),
                ('artifact_path', models.CharField(help_text='Under ARTIFACTS_URL; derived from the build id.', max_length=255)),
                ('artifact_name', models.CharField(help_text="The uploaded file's name, for display only.", max_length=255)),
                ('artifact_size', models.BigIntegerField()),
                ('artifact_sha256', models.CharField(max_length=64)),
                ('entrypoint', models.CharField(blank=True, max_length=255)),
                ('schema', models.JSONField(blank=True, null=True)),
                ('log', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='builds', to='builds.mlmodel')),
            ],
            options={
                'ordering': ['model', '-number'],
            },
        ),
        migrations.CreateModel(
            name='BatchConfig',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('deployment_name', models.CharField(max_length=63)),
                ('processes', models.CharField(choices=[('ONE', 'ONE — one model process per instance'), ('ALL', 'ALL — one model process per vCPU')], default='ALL', max_length=3)),
                ('env', models.JSONField(blank=True, default=dict)),
                ('is_active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('build', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batch_configs', to='builds.build')),
                ('instance_type', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='builds.instancetype')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batch_configs', to='builds.mlmodel')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='build',
            constraint=models.UniqueConstraint(fields=('model', 'number'), name='build_number_unique_per_model'),
        ),
        migrations.AddConstraint(
            model_name='batchconfig',
            constraint=models.UniqueConstraint(condition=models.Q(('is_active', True)), fields=('model',), name='one_active_batch_config_per_model'),
        ),
        migrations.AddConstraint(
            model_name='batchconfig',
            constraint=models.CheckConstraint(condition=models.Q(('processes__in', ['ONE', 'ALL'])), name='batch_config_processes_valid'),
        ),
        migrations.RunPython(seed_instance_types, migrations.RunPython.noop),
    ]
