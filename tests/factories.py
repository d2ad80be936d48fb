import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from builds.choices import ArtifactKind, BuildStatus
from builds.models import BatchConfig, Build, InstanceType, MLModel


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or []:
            self.groups.add(team)


class MLModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MLModel

    model_id = factory.Sequence(lambda n: f"model-{n}")
    description = "A test model"
    team = factory.SubFactory(GroupFactory)


SCHEMA = {
    "features": [{"name": "amount", "type": "float"}, {"name": "country", "type": "str"}],
    "predictions": [{"name": "score", "type": "float"}],
}


class BuildFactory(factory.django.DjangoModelFactory):
    """A build row as verification leaves it; its artifact is not on disk."""

    class Meta:
        model = Build

    model = factory.SubFactory(MLModelFactory)
    number = factory.Sequence(lambda n: n + 1)
    status = BuildStatus.SUCCEEDED
    artifact_kind = ArtifactKind.SOURCE
    artifact_path = factory.LazyAttribute(lambda b: f"builds/{b.number}/artifact.zip")
    artifact_name = "model.zip"
    artifact_size = 1234
    artifact_sha256 = "0" * 64
    entrypoint = "model:Model"
    schema = SCHEMA


class BatchConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BatchConfig

    build = factory.SubFactory(BuildFactory)
    model = factory.LazyAttribute(lambda c: c.build.model)
    deployment_name = "test-deployment"
    instance_type = factory.LazyFunction(lambda: InstanceType.objects.get(name="ml.m5.large"))
    processes = "ALL"
    env = factory.LazyFunction(dict)


class BatchJobFactory(factory.django.DjangoModelFactory):
    """A job row as the pipeline leaves it (succeeded by default); nothing is on disk."""

    class Meta:
        model = "batchjobs.BatchJob"

    batch_config = factory.SubFactory(BatchConfigFactory)
    model = factory.LazyAttribute(lambda j: j.batch_config.model)
    build = factory.LazyAttribute(lambda j: j.batch_config.build)
    status = "succeeded"
    phase = "done"
    input_table = "prod.t.input"
    output_table = factory.Sequence(lambda n: f"prod.out.scores_{n}")
    input_rows = 2_000
    batches_total = 2


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "batchjobs.Batch"

    job = factory.SubFactory(BatchJobFactory)
    index = factory.Sequence(lambda n: n)
    rows = 1_000
    status = "succeeded"
    attempts = 1
