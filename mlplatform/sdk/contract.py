"""The batch contract, checked the same way by the platform and by model authors locally.

from mlplatform.sdk import check_model
report = check_model(MyModel())   # raises ContractError naming the rule that failed
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from mlplatform.sdk.schema import ModelSchema, accepted_type_names, arrow_type, arrow_type_name

# The platform's default largest prediction row (its MAX_ROW_BYTES setting), for local checks.
MAX_ROW_BYTES = 100 * 1024 * 1024

NAME_RULE = "lowercase letters, digits and underscores, starting with a letter or underscore, at most 63 characters"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)


class ContractError(Exception):
    """The model broke the batch contract; the message names the rule."""


# predict() of a Model subclass checks the contract itself (mlplatform.sdk.model) unless the
# platform checks it: in its model processes (the whole process) and within check_model (a context).
_in_platform_process = False
_local_checks: ContextVar[bool] = ContextVar("mlplatform_local_checks", default=True)


def platform_process() -> None:
    """This process is the platform's model process: it checks every batch itself, so predict()
    never checks again."""
    global _in_platform_process
    _in_platform_process = True


def local_checks_enabled() -> bool:
    return not _in_platform_process and _local_checks.get()


@contextmanager
def local_checks_off() -> Iterator[None]:
    """predict() calls made in this block (in this thread) run without their own checks."""
    token = _local_checks.set(False)
    try:
        yield
    finally:
        _local_checks.reset(token)


def check_schema(schema: object) -> list[str]:
    """Every rule the schema breaks, as sentences (empty when the schema is fine)."""
    if not isinstance(schema, ModelSchema):
        return [f"schema() must return a mlplatform.sdk.ModelSchema, not {type(schema).__name__}"]
    errors: list[str] = []
    seen: set[str] = set()
    for kind, columns in (("feature", schema.features), ("prediction", schema.predictions)):
        for column in columns:
            name = column.name
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                errors.append(f"{kind} name {name!r} breaks the naming rule: {NAME_RULE}")
            # A feature's type is only shown (input tables hold any type); a prediction's shapes the output.
            if kind == "prediction" and arrow_type_name(column.type) is None:
                errors.append(
                    f"prediction {name!r} has type {column.type!r}, which the platform does not know; "
                    f"the accepted types (any case) are: {accepted_type_names()}"
                )
            if name in seen:
                errors.append(f"{kind} name {name!r} is used twice: names must be unique")
            seen.add(name)
    if not schema.predictions:
        errors.append("the schema declares no prediction: at least one prediction is required")
    both = sorted(set(schema.feature_names) & set(schema.prediction_names))
    if both:
        errors.append(f"{', '.join(map(repr, both))} is both a feature and a prediction: they must be disjoint")
    return errors


def _sample_values(type_name: object, n: int):
    """n plausible values of a feature's type; None for a type the platform has no name for."""
    alias = arrow_type_name(type_name)
    if alias is None:
        return None
    kind = arrow_type(alias)
    if pa.types.is_integer(kind):
        return np.arange(n, dtype=kind.to_pandas_dtype())
    if pa.types.is_floating(kind):
        return np.linspace(1.0, 100.0, n).astype(kind.to_pandas_dtype())
    if pa.types.is_string(kind):
        return pd.array([f"value_{i}" for i in range(n)], dtype="str")
    if pa.types.is_boolean(kind):
        return np.arange(n) % 2 == 0
    if pa.types.is_date(kind):
        return [d.date() for d in pd.date_range("2024-01-01", periods=n, freq="D")]
    return pd.date_range("2024-01-01", periods=n, freq="h", tz=kind.tz)


def sample_frame(schema: ModelSchema, rows: int = 5) -> pd.DataFrame:
    """A few plausible rows built from the schema's features, for a first predict() call. A feature
    whose type has no name here (a list, a struct, a decimal) gets numbers: see unsampled_features."""
    columns = {}
    for f in schema.features:
        values = _sample_values(f.type, rows)
        columns[f.name] = np.linspace(1.0, 100.0, rows) if values is None else values
    return pd.DataFrame(columns)


def unsampled_features(schema: ModelSchema) -> list[str]:
    """The features sample_frame cannot make values of their type for."""
    return [f.name for f in schema.features if arrow_type_name(f.type) is None]


def _row_bytes(df: pd.DataFrame) -> np.ndarray:
    sizes = np.zeros(len(df), dtype="int64")
    for _, column in df.items():
        if isinstance(column.dtype, pd.StringDtype):  # vectorised: a frame of a million rows is common
            sizes += column.str.len().to_numpy(dtype="int64", na_value=0)
        elif column.dtype == object:
            sizes += column.map(lambda v: len(v) if isinstance(v, (str, bytes)) else sys.getsizeof(v)).to_numpy(
                dtype="int64", na_value=0
            )
        else:
            sizes += column.dtype.itemsize if hasattr(column.dtype, "itemsize") else 8
    return sizes


def check_output(
    batch: pd.DataFrame, output: object, schema: ModelSchema, *, max_row_bytes: int | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """predict()'s output as the schema's prediction columns aligned to ``batch``, and notes.

    Raises ContractError when the output cannot be trusted.
    """
    notes: list[str] = []
    if not isinstance(output, pd.DataFrame):
        raise ContractError(f"predict() returned {type(output).__name__}, not a pandas DataFrame")
    if len(output) != len(batch):
        raise ContractError(f"predict() returned {len(output)} rows for a batch of {len(batch)} rows")
    if not output.index.equals(batch.index):
        if output.index.is_unique and output.index.sort_values().equals(batch.index.sort_values()):
            output = output.reindex(batch.index)
            notes.append("predict() returned the batch's rows in another order; they were realigned by index")
        elif output.index.equals(pd.RangeIndex(len(batch))):
            output = output.set_axis(batch.index)
        else:
            raise ContractError(
                "predict() returned an index that is neither the batch's index (in any order) "
                "nor a fresh 0..n-1 index, so its rows cannot be matched to the input rows"
            )
    missing = [name for name in schema.prediction_names if name not in output.columns]
    if missing:
        raise ContractError(
            f"predict() output lacks the prediction column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} declared in schema()"
        )
    extra = [c for c in output.columns if c not in schema.prediction_names]
    if extra:
        notes.append(f"columns not in the schema were dropped: {', '.join(map(str, extra[:10]))}")
    output = output[schema.prediction_names]
    if max_row_bytes is not None and len(output):
        sizes = _row_bytes(output)
        worst = int(sizes.argmax())
        if sizes[worst] > max_row_bytes:
            raise ContractError(
                f"predict() returned a row of {sizes[worst]:,} bytes (row {worst} of the batch); "
                f"the limit is {max_row_bytes:,} bytes per row"
            )
    return output, notes


ORDER_CHECK_ROWS = 5


def check_row_order(
    model: object, batch: pd.DataFrame, predictions: pd.DataFrame, schema: ModelSchema, *, seed: int = 0, call=None
):
    """predict() on a few rows of the batch alone must give, for each, what the whole batch's call
    gave (floats within 1e-6): else the output rows came back in another order than the input rows
    (shuffled and given a fresh index, say), or the model is not deterministic. Raises
    ContractError. `predictions` is check_output's: aligned to `batch`. `call` calls predict() (the
    platform's keeps what this second call prints out of the log).

    The rows: a few at random, and the rows with the first prediction's extreme (or first distinct)
    values, so that rows in another order are seen even when most predictions are alike."""
    picks = set(np.random.default_rng(seed).choice(len(batch), size=min(ORDER_CHECK_ROWS, len(batch)), replace=False))
    first = predictions[schema.prediction_names[0]]
    if pd.api.types.is_numeric_dtype(first) and first.notna().any():
        values = first.to_numpy(dtype=float, na_value=np.nan)
        picks |= {int(np.nanargmin(values)), int(np.nanargmax(values))}
    else:
        picks |= set(pd.Series(pd.factorize(first)[0]).drop_duplicates().index[:3].tolist())
    picks = np.array(sorted(int(p) for p in picks))
    sample = batch.iloc[picks]
    alone, _ = check_output(sample, (call or model.predict)(sample.copy()), schema)
    expected = predictions.iloc[picks]
    for name in schema.prediction_names:
        got, want = alone[name].to_numpy(), expected[name].to_numpy()
        if pd.api.types.is_numeric_dtype(alone[name]) and pd.api.types.is_numeric_dtype(expected[name]):
            same = np.isclose(got.astype(float), want.astype(float), rtol=1e-6, atol=1e-9, equal_nan=True)
        else:
            same = np.array([str(a) == str(b) for a, b in zip(got, want, strict=True)])
        if not same.all():
            at = int(np.argmin(same))
            raise ContractError(
                f"predict() gave other predictions for rows of the batch called on them alone than in the whole "
                f"batch (row {sample.index[at]}: {name} = {got[at]!r} alone, {want[at]!r} in the batch): its "
                "output rows came back in another order than its input rows (shuffled and given a fresh index?), "
                "or its predictions are not deterministic. A model whose predictions may change from call to call "
                "declares ModelSchema(..., deterministic=False), which skips this check"
            )


def predictions_table(predictions: pd.DataFrame, schema: ModelSchema, types: dict[str, str] | None = None) -> pa.Table:
    """check_output's predictions as Arrow, each column of its declared type (`types`: name →
    Arrow type name, by default the schema's): what the output table gets. Raises ContractError
    naming the column when its values cannot be stored as that type."""
    declared = {p.name: p.type for p in schema.predictions}
    arrays = []
    for name in schema.prediction_names:
        target = arrow_type((types or {}).get(name) or arrow_type_name(declared[name]))
        try:
            array = pa.array(predictions[name], from_pandas=True)
            arrays.append(array if array.type.equals(target) else array.cast(target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ContractError(
                f"the prediction column {name!r} cannot be stored as its declared type "
                f"{declared[name]!r} ({target}): {exc}"
            ) from None
    return pa.Table.from_arrays(arrays, names=schema.prediction_names)


def check_predict(
    model: object,
    batch: pd.DataFrame,
    output: object,
    schema: ModelSchema,
    *,
    call,
    max_row_bytes: int | None = MAX_ROW_BYTES,
    types: dict[str, str] | None = None,
    seed: int = 0,
) -> tuple[pa.Table, list[str]]:
    """Every check of one predict() call on `batch` that gave `output`, as the platform makes them
    on each batch (check_output, the row-order check, the declared types): the predictions as
    Arrow (see predictions_table), and notes. `call` calls the model's predict() unchecked."""
    predictions, notes = check_output(batch, output, schema, max_row_bytes=max_row_bytes)
    if not schema.deterministic:
        notes.append("the row-order check was skipped: the schema says the model is not deterministic")
    elif len(batch) > 1:
        check_row_order(model, batch, predictions, schema, seed=seed, call=call)
    return predictions_table(predictions, schema, types), notes


@dataclass
class CheckReport:
    schema: ModelSchema
    rows: int
    notes: list[str] = field(default_factory=list)


def check_model(
    model: object, sample: pd.DataFrame | None = None, *, call=None, max_row_bytes: int | None = MAX_ROW_BYTES
) -> CheckReport:
    """What the platform does when it verifies a build: schema rules, then one predict()."""
    schema = model.schema()
    errors = check_schema(schema)
    if errors:
        raise ContractError("; ".join(errors))
    notes = []
    if sample is None:
        sample = sample_frame(schema)
        unsampled = unsampled_features(schema)
        if unsampled:
            notes.append(
                f"the sample rows hold numbers for {', '.join(map(repr, unsampled))}, whose type the platform "
                "makes no values of: put a sample file (sample.csv or sample.parquet) in the artifact"
            )
    missing = [name for name in schema.feature_names if name not in sample.columns]
    if missing:
        raise ContractError(f"the sample rows lack the feature column(s) {', '.join(map(repr, missing))}")
    with local_checks_off():  # checked here, once
        output = model.predict(sample.copy())
        _, more = check_predict(model, sample, output, schema, call=call or model.predict, max_row_bytes=max_row_bytes)
    return CheckReport(schema=schema, rows=len(sample), notes=notes + more)
