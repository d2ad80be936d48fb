"""What model authors import. No Django here: this runs inside the model's own process.

from mlplatform.sdk import Feature, Prediction, ModelSchema, Model
"""

from mlplatform.sdk.client import (
    ApiError,
    BatchJobFailed,
    BatchPredictionError,
    BatchPredictor,
    OutputRowCountMismatch,
    OutputTableNotDropped,
    PredictorConfig,
    invoke_batch_predict_model,
)
from mlplatform.sdk.contract import (
    ContractError,
    check_model,
    check_output,
    check_predict,
    check_schema,
    local_checks_off,
    sample_frame,
)
from mlplatform.sdk.model import Model
from mlplatform.sdk.schema import TYPE_NAMES, TYPES, Feature, ModelSchema, Prediction

__all__ = [
    "TYPES",
    "TYPE_NAMES",
    "ApiError",
    "BatchJobFailed",
    "BatchPredictionError",
    "BatchPredictor",
    "OutputRowCountMismatch",
    "OutputTableNotDropped",
    "PredictorConfig",
    "invoke_batch_predict_model",
    "ContractError",
    "Feature",
    "Model",
    "ModelSchema",
    "Prediction",
    "check_model",
    "check_output",
    "check_predict",
    "check_schema",
    "local_checks_off",
    "sample_frame",
]
