"""What a model says it reads and writes: features in, predictions out."""

from __future__ import annotations

from dataclasses import dataclass, field

# Column types a schema may name, with the Arrow type each stands for.
TYPES: dict[str, str] = {
    "int": "int64",
    "float": "double",
    "str": "string",
    "bool": "bool",
    "datetime": "timestamp[us]",
}


@dataclass(frozen=True)
class Feature:
    name: str
    type: str = "float"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class Prediction:
    name: str
    type: str = "float"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class ModelSchema:
    features: tuple[Feature, ...] = field(default_factory=tuple)
    predictions: tuple[Prediction, ...] = field(default_factory=tuple)
    # False for a model whose predictions for a row may change from call to call (sampling, dropout)
    # or depend on the other rows of the batch: the platform then skips its row-order check.
    deterministic: bool = True

    def __post_init__(self) -> None:
        # Accept lists from model authors; keep the schema immutable.
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "predictions", tuple(self.predictions))

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def prediction_names(self) -> list[str]:
        return [p.name for p in self.predictions]

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {
            "features": [f.to_dict() for f in self.features],
            "predictions": [p.to_dict() for p in self.predictions],
        } | ({} if self.deterministic else {"deterministic": False})

    @classmethod
    def from_dict(cls, data: dict) -> ModelSchema:
        return cls(
            features=[Feature(d["name"], d.get("type", "float")) for d in data.get("features", [])],
            predictions=[Prediction(d["name"], d.get("type", "float")) for d in data.get("predictions", [])],
            deterministic=bool(data.get("deterministic", True)),
        )
