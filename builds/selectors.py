"""Reads, always filtered by team in the query itself: another team's object is simply absent."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from builds.models import BatchConfig, Build, InstanceType, MLModel
from mlplatform.sdk.schema import arrow_type, arrow_type_name


def user_teams(user: AbstractBaseUser) -> QuerySet[Group]:
    return Group.objects.all() if user.is_staff else user.groups.all()


def model_list(*, user: AbstractBaseUser, search: str = "") -> QuerySet[MLModel]:
    models = MLModel.objects.select_related("team")
    if not user.is_staff:
        models = models.filter(team__in=user.groups.all())
    if search:
        models = models.filter(Q(model_id__icontains=search) | Q(description__icontains=search))
    active = BatchConfig.objects.filter(model=OuterRef("pk"), is_active=True)
    return models.annotate(has_active_config=Exists(active)).order_by("model_id")


def model_get(*, user: AbstractBaseUser, model_id: str) -> MLModel:
    try:
        return model_list(user=user).get(model_id=model_id)
    except MLModel.DoesNotExist:
        raise Http404("No such model.") from None


def active_batch_config(*, model: MLModel) -> BatchConfig | None:
    return (
        BatchConfig.objects.select_related("build", "instance_type", "created_by")
        .filter(model=model, is_active=True)
        .first()
    )


def build_list(*, model: MLModel) -> QuerySet[Build]:
    active = BatchConfig.objects.filter(build=OuterRef("pk"), is_active=True)
    return (
        Build.objects.filter(model=model)
        .select_related("created_by", "model")
        .annotate(used_in_batch=Exists(active))
        .order_by("-number")
    )


def build_get(*, user: AbstractBaseUser, build_id) -> Build:
    builds = Build.objects.select_related("model", "model__team", "created_by").annotate(
        used_in_batch=Exists(BatchConfig.objects.filter(build=OuterRef("pk"), is_active=True))
    )
    if not user.is_staff:
        builds = builds.filter(model__team__in=user.groups.all())
    try:
        return builds.get(pk=build_id)
    except (Build.DoesNotExist, ValidationError):  # a malformed id is a ValidationError
        raise Http404("No such build.") from None


def latest_batch_config(*, build: Build) -> BatchConfig | None:
    return BatchConfig.objects.select_related("instance_type").filter(build=build).first()


def instance_type_list() -> QuerySet[InstanceType]:
    return InstanceType.objects.filter(is_active=True)


def schema_rows(*, build: Build) -> list[dict]:
    """The build's schema as a page lists it: each column with the type its author wrote, and for a
    prediction the Arrow type its output column gets."""
    schema = build.schema or {"features": [], "predictions": []}
    features = [{"name": f["name"], "type": f["type"], "role": "feature"} for f in schema["features"]]
    predictions = []
    for p in schema["predictions"]:
        alias = arrow_type_name(p["type"])
        stored = str(arrow_type(alias)) if alias else ""
        predictions.append({"name": p["name"], "type": p["type"], "role": "prediction", "stored_as": stored})
    return features + predictions
