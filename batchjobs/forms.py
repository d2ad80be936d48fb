from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from batchjobs import selectors
from batchjobs.choices import JobStatus


class PredictForm(forms.Form):
    input_table = forms.CharField(
        label="Input table",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "prod.schema.input_table", "spellcheck": "false"}),
        help_text="Needs every feature column of the build's schema; extra columns are passed to predict().",
    )
    output_table = forms.CharField(
        label="Output table",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "prod.schema.new_output_table", "spellcheck": "false"}),
        help_text="A new table: the input rows joined with their predictions. It must not exist yet.",
    )


class EventFilterForm(forms.Form):
    evid = forms.TypedChoiceField(
        label="Event",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "All"), (402, "402 start"), (400, "400 success"), (401, "401 failure")],
    )
    model_id = forms.CharField(label="Model", required=False, max_length=63)
    job_id = forms.CharField(label="Job id", required=False, max_length=36)
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))


SINCE_PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class JobFilterForm(forms.Form):
    """The board's filters, all in the URL so a filtered board can be shared and the back button works."""

    status = forms.ChoiceField(required=False, choices=[("", "All"), *JobStatus.choices])
    model = forms.ChoiceField(label="Model", required=False)
    user = forms.ChoiceField(label="Triggered by", required=False)
    since = forms.ChoiceField(
        label="When",
        required=False,
        choices=[
            ("", "Any time"),
            ("1h", "Last hour"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
        ],
    )
    q = forms.CharField(
        label="Job id",
        required=False,
        max_length=36,
        widget=forms.TextInput(attrs={"placeholder": "Job id starts with…", "spellcheck": "false", "type": "search"}),
    )

    def __init__(self, *args, models: list[str], users: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All models"), *((m, m) for m in models)]
        self.fields["user"].choices = [("", "Anyone"), *((u, u) for u in users)]

    def clean_q(self) -> str:
        value = self.cleaned_data["q"]
        if value:
            try:
                return selectors.clean_id_prefix(value)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict["job_id"]) from None
        return value

    def filters(self) -> dict:
        """Keyword arguments for selectors.job_list (call after is_valid())."""
        data = self.cleaned_data
        since = SINCE_PRESETS.get(data["since"])
        return {
            "model_id": data["model"],
            "status": data["status"],
            "requested_by": data["user"],
            "since": timezone.now() - since if since else None,
            "id_prefix": data["q"],
        }
