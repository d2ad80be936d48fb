# Squashed: the whole schema of the app (nothing was released before).

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('builds', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='QueueLock',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
            ],
        ),
        migrations.CreateModel(
            name='BatchJob',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelling', 'Cancelling'), ('cancelled', 'Cancelled')], db_index=True, default='queued', max_length=16)),
                ('phase', models.CharField(choices=[('waiting', 'Waiting in the queue'), ('extracting', 'Extracting the input'), ('predicting', 'Predicting'), ('committing', 'Writing the output table'), ('done', 'Done')], default='waiting', max_length=16)),
                ('message', models.TextField(blank=True, help_text='Why the job failed, or what it is doing.')),
                ('error_detail', models.TextField(blank=True, help_text='The first failure in full: error, traceback.')),
                ('input_table', models.CharField(max_length=200)),
                ('output_table', models.CharField(max_length=200)),
                ('input_rows', models.BigIntegerField(blank=True, null=True)),
                ('output_rows', models.BigIntegerField(blank=True, null=True)),
                ('batches_total', models.PositiveIntegerField(default=0)),
                ('parallelism', models.PositiveSmallIntegerField(default=1)),
                ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                ('cancel_requested', models.BooleanField(default=False)),
                ('staging_removed', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('queued_at', models.DateTimeField(blank=True, help_text='when it last entered the queue (a retry)', null=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('extracted_at', models.DateTimeField(blank=True, null=True)),
                ('predicted_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('batch_config', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='batch_jobs', to='builds.batchconfig')),
                ('build', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='batch_jobs', to='builds.build')),
                ('model', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batch_jobs', to='builds.mlmodel')),
                ('requested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Batch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('index', models.PositiveIntegerField()),
                ('rows', models.PositiveIntegerField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='pending', max_length=16)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                ('queued_at', models.DateTimeField(blank=True, help_text='when it was last sent to a worker', null=True)),
                ('worker', models.CharField(blank=True, help_text='host and process running it', max_length=255)),
                ('worker_pid', models.IntegerField(blank=True, null=True)),
                ('error', models.TextField(blank=True)),
                ('traceback', models.TextField(blank=True)),
                ('predict_seconds', models.FloatField(blank=True, null=True)),
                ('peak_rss_mib', models.FloatField(blank=True, null=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='batches', to='batchjobs.batchjob')),
            ],
            options={
                'ordering': ['job', 'index'],
            },
        ),
        migrations.CreateModel(
            name='JobEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('evid', models.PositiveSmallIntegerField(choices=[(400, '400 job success'), (401, '401 job failure'), (402, '402 job start')], db_index=True)),
                ('model_id', models.CharField(db_index=True, max_length=63)),
                ('build_id', models.UUIDField()),
                ('endpoint_name', models.CharField(max_length=63)),
                ('job_start_time', models.DateTimeField(blank=True, null=True)),
                ('job_type', models.CharField(default='batch_prediction', max_length=32)),
                ('error', models.TextField(blank=True)),
                ('date_created', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='batchjobs.batchjob')),
            ],
            options={
                'ordering': ['-date_created', '-id'],
            },
        ),
        migrations.CreateModel(
            name='BatchAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveSmallIntegerField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='running', max_length=16)),
                ('worker', models.CharField(blank=True, max_length=255)),
                ('error', models.TextField(blank=True)),
                ('log', models.TextField(blank=True)),
                ('started_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('batch', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='batchjobs.batch')),
            ],
            options={
                'ordering': ['batch', '-number'],
                'constraints': [models.UniqueConstraint(fields=('batch', 'number'), name='attempt_number_unique_per_batch')],
            },
        ),
        migrations.AddIndex(
            model_name='batchjob',
            index=models.Index(fields=['status', 'created_at'], name='batchjobs_b_status_5cb09b_idx'),
        ),
        migrations.AddIndex(
            model_name='batchjob',
            index=models.Index(fields=['-created_at', '-id'], name='batchjob_board_order'),
        ),
        migrations.AddConstraint(
            model_name='batchjob',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ('queued', 'running', 'cancelling'))), fields=('output_table',), name='one_unfinished_job_per_output_table'),
        ),
        migrations.AddIndex(
            model_name='batch',
            index=models.Index(fields=['status', 'lease_expires_at'], name='batchjobs_b_status_b1ef30_idx'),
        ),
        migrations.AddConstraint(
            model_name='batch',
            constraint=models.UniqueConstraint(fields=('job', 'index'), name='batch_index_unique_per_job'),
        ),
    ]
