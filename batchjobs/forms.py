from django import forms


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
