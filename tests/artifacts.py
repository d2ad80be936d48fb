"""Model artifacts for tests, written the way users ship them: a zip of source with an entrypoint."""

from __future__ import annotations

import io
import textwrap
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile

GOOD_MODEL = """
import pandas as pd
from mlplatform.sdk import Feature, Model, ModelSchema, Prediction

class Scorer(Model):
    def schema(self):
        return ModelSchema([Feature("amount", "float"), Feature("country", "str")], [Prediction("score", "float")])

    def predict(self, df):
        {predict}
"""

GOOD_PREDICT = 'return pd.DataFrame({"score": df["amount"] * 2}, index=df.index)'


def source_zip(code: str, *, module: str = "scorer.py", extra: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(module, textwrap.dedent(code))
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def model_zip(predict: str = GOOD_PREDICT, *, schema: str | None = None) -> bytes:
    code = GOOD_MODEL.replace("{predict}", predict)
    if schema is not None:
        code = code.replace(
            'ModelSchema([Feature("amount", "float"), Feature("country", "str")], [Prediction("score", "float")])',
            schema,
        )
    return source_zip(code)


def upload(content: bytes, name: str = "scorer.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")
