"""A wide numeric model for benchmarks: 40 float64 features, StandardScaler + LogisticRegression.
As an artifact: a .tar.gz of this folder (with its weights), entrypoint wide_model.model:WideModel."""

from .model import WideModel

__all__ = ["WideModel"]
