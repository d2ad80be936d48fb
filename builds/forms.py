"""Forms parse what the user typed; the services decide whether it is allowed."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group

from builds.choices import Processes
from builds.models import InstanceType
from builds.services import DEPLOYMENT_NAME, DEPLOYMENT_NAME_RULE, env_errors

PROCESSES_HELP = (
    "TensorFlow models must use ONE. Models that use more than about 1 GB of memory should use ONE. "
    "Otherwise use ALL (one process per vCPU of the instance type)."
)
BLANK_ENV_ROWS = 2


class ModelCreateForm(forms.Form):
    model_id = forms.CharField(
        label="Model id", max_length=100, help_text="Lowercase letters, digits and hyphens, e.g. churn-forecast"
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    team = forms.ModelChoiceField(queryset=Group.objects.none(), to_field_name="name", empty_label=None)

    def __init__(self, *args, teams, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class BuildUploadForm(forms.Form):
    artifact = forms.FileField(
        help_text="A .zip or .tar.gz of Python source (give its entrypoint), or a .joblib/.pkl model object."
    )
    entrypoint = forms.CharField(
        required=False, max_length=255, help_text="module.path:ClassName, for source archives only."
    )


class BatchConfigForm(forms.Form):
    deployment_name = forms.CharField(label="Deployment Name", max_length=100, strip=True)
    instance_type = forms.ModelChoiceField(
        label="Instance type",
        queryset=InstanceType.objects.filter(is_active=True),
        to_field_name="name",
        empty_label=None,
    )
    processes = forms.ChoiceField(
        label="Number of Processes",
        choices=Processes.choices,
        initial=Processes.ALL,
        widget=forms.RadioSelect,
        help_text=PROCESSES_HELP,
    )
    allow_network = forms.BooleanField(
        label="Allow network access",
        required=False,
        help_text="Only for a model that calls an outside service: its code can then reach any host this "
        "server reaches, including the platform's own database.",
    )
    # Holds errors about the environment variable rows, which are read from env_key/env_value.
    env = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, initial_env: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound:
            keys, values = self.data.getlist("env_key"), self.data.getlist("env_value")
            self.env_rows = [(k.strip(), v) for k, v in zip(keys, values, strict=False) if k.strip() or v]
        else:
            self.env_rows = list((initial_env or {}).items())

    @property
    def env_rows_with_blanks(self) -> list[tuple[str, str]]:
        return self.env_rows + [("", "")] * BLANK_ENV_ROWS

    @property
    def shows_advanced(self) -> bool:
        return (
            bool(self.env_rows) or bool(self["allow_network"].value()) or bool({"processes", "env"} & set(self.errors))
        )

    def clean_deployment_name(self) -> str:
        # The service's rule, checked here too so that every error of the form shows at once.
        name = self.cleaned_data["deployment_name"]
        if not DEPLOYMENT_NAME.match(name):
            raise forms.ValidationError(f"The deployment name must use {DEPLOYMENT_NAME_RULE}.")
        return name

    def clean(self) -> dict:
        cleaned = super().clean()
        env: dict[str, str] = {}
        for key, value in self.env_rows:
            if not key:
                self.add_error("env", f"The value {value[:40]!r} has no variable name.")
                continue
            if key in env:
                self.add_error("env", f"{key!r} is set twice.")
            env[key] = value
        for problem in env_errors(env):  # the names' and values' rules, with the other fields' errors
            self.add_error("env", problem)
        cleaned["env"] = env
        return cleaned
