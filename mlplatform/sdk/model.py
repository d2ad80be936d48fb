"""The base class model authors implement."""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod

import pandas as pd

from mlplatform.sdk import contract
from mlplatform.sdk.schema import ModelSchema


class Model(ABC):
    """A batch model.

    The platform instantiates the class with no arguments, so load weights in ``__init__``
    relative to the module file (``Path(__file__).parent / "model.joblib"``): the artifact is
    then self-contained. ``predict`` gets a DataFrame with (at least) the schema's feature
    columns and returns a DataFrame with the schema's prediction columns, one row per input
    row, in the same order.

    Called anywhere but on the platform (a laptop, a notebook), ``predict`` checks the batch
    rules the platform checks on every batch and raises ``ContractError`` naming the rule broken;
    on the platform it runs as written (the platform checks it once). ``MyModel.predict.__wrapped__``
    is the method as written.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        predict = cls.__dict__.get("predict")
        if inspect.isfunction(predict) and not getattr(predict, "__mlplatform_checked__", False):
            cls.predict = _checked(predict)

    @abstractmethod
    def schema(self) -> ModelSchema: ...

    @abstractmethod
    def predict(self, df: pd.DataFrame) -> pd.DataFrame: ...


def _checked(predict):
    """`predict`, checking the batch contract around each outermost call made off the platform."""

    @functools.wraps(predict)
    def checked_predict(self, df, *args, **kwargs):
        if args or kwargs or not contract.local_checks_enabled():
            return predict(self, df, *args, **kwargs)
        with contract.local_checks_off():  # calls within (super().predict, the row-order check) run plain
            return _predict_checked(self, predict, df)

    checked_predict.__mlplatform_checked__ = True
    return checked_predict


def _predict_checked(model, predict, df):
    if not isinstance(df, pd.DataFrame):
        raise contract.ContractError(
            f"predict() takes a pandas DataFrame (the platform passes one), not {type(df).__name__}"
        )
    schema = model.schema()
    errors = contract.check_schema(schema)
    if errors:
        raise contract.ContractError("; ".join(errors))
    missing = [name for name in schema.feature_names if name not in df.columns]
    if missing:
        raise contract.ContractError(
            f"predict() got rows without the feature column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} declared in schema(): the platform refuses such an input table"
        )
    output = predict(model, df)
    call = functools.partial(predict, model)  # the row-order check's second call, unchecked
    contract.check_predict(model, df, output, schema, call=call, max_row_bytes=contract.MAX_ROW_BYTES)
    return output
