"""What the commands share: the acting user and a model that user can see, or a clear error."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.http import Http404

from builds import selectors
from builds.models import MLModel


def user_and_model(username: str, model_id: str) -> tuple:
    try:
        user = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"--user: no user named {username!r}") from None
    try:
        model: MLModel = selectors.model_get(user=user, model_id=model_id)
    except Http404:
        raise CommandError(f"model_id: {user.username} can see no model named {model_id!r}") from None
    return user, model
