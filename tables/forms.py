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
