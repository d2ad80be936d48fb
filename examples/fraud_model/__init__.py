"""The demo fraud model. As an artifact: a .tar.gz of this folder, entrypoint fraud_model.model:FraudModel."""

from .model import FraudModel

__all__ = ["FraudModel"]
