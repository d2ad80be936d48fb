from django import forms

from batchjobs.choices import NotifyOn

TEXT = {"spellcheck": "false", "autocomplete": "off"}


class ScheduleForm(forms.Form):
    """The schedule's fields as typed; the service checks them (errors come back under these names)."""

    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "nightly", **TEXT}))
    input_table = forms.CharField(
        label="Input table",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "prod.fraud.daily_input", **TEXT}),
        help_text="Read at each run as it is then (refresh it before the due time).",
    )
    output_table_template = forms.CharField(
        label="Output table template",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "prod.fraud.scores_{date}", **TEXT}),
        help_text="{date} → 2026_12_01, {datetime} → 2026_12_01_0200, {run} → the run's number.",
    )
    cron = forms.CharField(
        label="Cron",
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "0 2 * * *", **TEXT}),
        help_text="minute hour day-of-month month day-of-week",
    )
    timezone = forms.CharField(
        label="Time zone",
        max_length=64,
        initial="UTC",
        widget=forms.TextInput(attrs={"list": "timezones", **TEXT}),
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    history_table = forms.CharField(
        label="History table",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "optional: prod.fraud.scores_history", **TEXT}),
        help_text="Each run's output is appended here.",
    )
    events_table = forms.CharField(
        label="Events table",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "optional: prod.events.synthetic", **TEXT}),
        help_text="One synthetic event (source 70) per output row.",
    )
    event_key_column = forms.CharField(
        label="Event key column",
        max_length=63,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "customer_id", **TEXT}),
        help_text="The input's entity key column (needed with an events table).",
    )
    keep_last = forms.CharField(
        label="Keep last outputs",
        required=False,
        widget=forms.NumberInput(attrs={"min": 1, "max": 10_000, "placeholder": "all"}),
        help_text="Drop this schedule's older output tables (empty: keep every one).",
    )
    notify_urls = forms.CharField(
        label="Notify URLs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "slack://…, mailto://…, json://…", **TEXT}),
        help_text=(
            "Apprise URLs, one per line: mailto(s)://, slack://, workflows://, discord://, tgram://, "
            "ntfy(s)://, json(s)://, form(s)://, xml(s):// to a public address."
        ),
    )
    notify_on = forms.ChoiceField(label="Notify", choices=NotifyOn.choices, initial=NotifyOn.FAILURE)

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["notify_urls"] = [line.strip() for line in data["notify_urls"].splitlines() if line.strip()]
        return data
