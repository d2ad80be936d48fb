"""The base class model authors implement."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd

from mlplatform.sdk.schema import ModelSchema


class Model(ABC):
    """A batch model.

    The platform instantiates the class with no arguments, so load weights in ``__init__``
    relative to the module file (``Path(__file__).parent / "model.joblib"``): the artifact is
    then self-contained. ``predict`` gets a DataFrame with (at least) the schema's feature
    columns and returns a DataFrame with the schema's prediction columns, one row per input
    row, in the same order.
    """

    @abstractmethod
    def schema(self) -> ModelSchema: ...

    @abstractmethod
    def predict(self, df: pd.DataFrame) -> pd.DataFrame: ...
