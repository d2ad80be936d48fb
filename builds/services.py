"""Writes. Every page, API view and command calls these; they validate and own the transaction."""

from __future__ import annotations

import re
import uuid
from typing import IO

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from builds import dispatch, envmask
from builds.choices import BuildStatus, Processes
from builds.models import BatchConfig, Build, InstanceType, MLModel, model_id_validator
from builds.runtime import artifacts
from builds.runtime.process import env_name_error

DEPLOYMENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.ASCII)
DEPLOYMENT_NAME_RULE = "lowercase letters, digits and hyphens, 1 to 63 characters, not starting or ending with a hyphen"
MAX_ENV_VARS = 50
MAX_ENV_VALUE = 4096


def model_create(*, model_id: str, description: str, team: Group | None, created_by: AbstractBaseUser) -> MLModel:
    errors: dict[str, list[str]] = {}
    try:
        model_id_validator(model_id)
    except ValidationError as exc:
        errors["model_id"] = exc.messages
    else:
        if MLModel.objects.filter(model_id=model_id).exists():
            errors["model_id"] = [f"A model named {model_id!r} already exists."]
    if team is None:
        errors["team"] = ["Choose the team that owns the model."]
    elif not created_by.is_staff and not created_by.groups.filter(pk=team.pk).exists():
        errors["team"] = [f"You are not a member of the team {team.name!r}."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            return MLModel.objects.create(model_id=model_id, description=description, team=team, created_by=created_by)
    except IntegrityError:  # registered by someone else a moment ago
        raise ValidationError({"model_id": [f"A model named {model_id!r} already exists."]}) from None


def build_register(
    *, model: MLModel, upload: IO[bytes], filename: str, entrypoint: str, created_by: AbstractBaseUser
) -> Build:
    """Store the artifact under an id-derived path, save a pending build, verify it on a worker."""
    build_id = uuid.uuid4()
    entrypoint = (entrypoint or "").strip()
    try:
        stored = artifacts.store(build_id=str(build_id), upload=upload, filename=filename, entrypoint=entrypoint)
    except artifacts.ArtifactError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None
    try:
        with transaction.atomic():
            MLModel.objects.select_for_update().filter(pk=model.pk).first()  # numbers stay unique and dense
            number = (model.builds.aggregate(n=Max("number"))["n"] or 0) + 1
            build = Build.objects.create(
                id=build_id,
                model=model,
                number=number,
                status=BuildStatus.PENDING,
                artifact_kind=stored.kind,
                artifact_path=stored.path,
                artifact_name=filename[-255:],
                artifact_size=stored.size,
                artifact_sha256=stored.sha256,
                entrypoint=entrypoint,
                created_by=created_by,
            )
            # robust: a broker that is down must not turn a saved upload into an error page; the
            # reaper sends the verification again.
            dispatch.send_verify(build.id)
    except Exception:
        artifacts.delete(stored.path)
        raise
    return build


def env_errors(env: object) -> list[str]:
    """What is wrong with a config's environment variables (names, values, count), one sentence each."""
    if not isinstance(env, dict):
        return ["Environment variables must be an object of NAME: value pairs."]
    errors = []
    if len(env) > MAX_ENV_VARS:
        errors.append(f"At most {MAX_ENV_VARS} environment variables are allowed.")
    for name, value in env.items():
        if problem := env_name_error(str(name)):
            errors.append(problem[0].upper() + problem[1:] + ".")
        if not isinstance(value, str):
            errors.append(f"The value of {name!r} must be a string.")
        elif "\x00" in value:
            errors.append(f"The value of {name!r} contains a NUL character, which an environment cannot hold.")
        elif len(value) > MAX_ENV_VALUE:
            errors.append(f"The value of {name!r} is longer than {MAX_ENV_VALUE} characters.")
    return errors


def batch_config_set(
    *,
    build: Build,
    deployment_name: str,
    instance_type: InstanceType | None,
    processes: str,
    env: dict[str, str],
    set_by: AbstractBaseUser,
    allow_network: bool = False,
) -> BatchConfig:
    """Save a batch config and make it the model's active one. Nothing is deployed or run."""
    errors: dict[str, list[str]] = {}
    if build.status != BuildStatus.SUCCEEDED:
        errors["build"] = [
            f"Build {build.number} is {build.get_status_display().lower()}: "
            "only a succeeded build can get a batch config."
        ]
    if not DEPLOYMENT_NAME.match(deployment_name or ""):
        errors["deployment_name"] = [f"The deployment name must use {DEPLOYMENT_NAME_RULE}."]
    if instance_type is None or not instance_type.is_active:
        errors["instance_type"] = ["Choose one of the available instance types."]
    if processes not in Processes.values:
        errors["processes"] = [f"Number of processes must be ONE or ALL, not {processes!r}."]
    missing: list[str] = []
    if isinstance(env, dict):  # a masked value sent back unchanged keeps the saved one
        active = BatchConfig.objects.filter(model_id=build.model_id, is_active=True).first()
        env, missing = envmask.unmasked(env, active.env if active else {})
    problems = env_errors(env) + [f"Give a value for {name}: it has none saved yet." for name in missing]
    if problems:
        errors["env"] = problems
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Lock the model row so two concurrent saves cannot both end up active.
        MLModel.objects.select_for_update().filter(pk=build.model_id).first()
        BatchConfig.objects.filter(model_id=build.model_id, is_active=True).update(is_active=False)
        return BatchConfig.objects.create(
            model_id=build.model_id,
            build=build,
            deployment_name=deployment_name,
            instance_type=instance_type,
            processes=processes,
            env=dict(env),
            allow_network=bool(allow_network),
            is_active=True,
            created_by=set_by,
        )
