from django import forms


class TableUploadForm(forms.Form):
    name = forms.CharField(
        label="Table name",
        max_length=200,
        help_text="catalog.schema.table, schema.table or table; lowercase letters, digits and underscores.",
        widget=forms.TextInput(attrs={"placeholder": "prod.my_schema.my_table", "spellcheck": "false"}),
    )
    file = forms.FileField(label="CSV or Parquet file", help_text="The first row of a CSV file names the columns.")


class TableDropForm(forms.Form):
    confirm = forms.CharField(label="Type the table name to confirm", max_length=200)


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
