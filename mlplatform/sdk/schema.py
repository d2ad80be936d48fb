"""What a model says it reads and writes: features in, predictions out.

A column's type is a name the author writes: the platform's own (int, float, str, bool, datetime)
or an alias from a warehouse (varchar, bigint, double, …) or from pandas and numpy (string, int64,
float32, object, …), in any case. The schema keeps the name as written; only a prediction's type
matters: it is the Arrow type of its column in the output table. A feature's type is only shown
(input tables may hold types no name here stands for: lists, structs, decimals).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

# The platform's own type names, with the Arrow type each stands for.
TYPES: dict[str, str] = {
    "int": "int64",
    "float": "double",
    "str": "string",
    "bool": "bool",
    "datetime": "timestamp[us]",
}

# Other names for them, as warehouses (SQL, Trino, Spark, PostgreSQL) and pandas/numpy spell them;
# each with the Arrow type that holds its values faithfully (SQL's integer is 32 bits, real 32).
ALIASES: dict[str, str] = {
    # whole numbers
    "bigint": "int64",
    "long": "int64",
    "int64": "int64",
    "integer": "int32",
    "int32": "int32",
    "smallint": "int16",
    "short": "int16",
    "int16": "int16",
    "tinyint": "int8",
    "int8": "int8",
    # real numbers
    "double": "double",
    "double precision": "double",
    "float64": "double",
    "real": "float32",
    "float32": "float32",
    # text
    "varchar": "string",
    "char": "string",
    "text": "string",
    "string": "string",
    "object": "string",
    # truth values
    "boolean": "bool",
    # time
    "timestamp": "timestamp[us]",
    "timestamp without time zone": "timestamp[us]",
    "datetime64": "timestamp[us]",
    "datetime64[ns]": "timestamp[us]",
    "datetime64[us]": "timestamp[us]",
    "timestamptz": "timestamp[us, tz=UTC]",
    "timestamp with time zone": "timestamp[us, tz=UTC]",
    "date": "date32",
}

# Every accepted name (lowercase), with its Arrow type.
TYPE_NAMES: dict[str, str] = TYPES | ALIASES

# varchar(255), character varying(10), char(1): the length says nothing Arrow keeps.
_LENGTH = re.compile(r"^(varchar|char|character|character varying|nvarchar)\s*\(\s*\d+\s*\)$")


def type_key(name: object) -> str:
    """A type name as looked up: lowercase, spaces collapsed, a text length dropped."""
    key = " ".join(str(name).lower().split())
    return "varchar" if _LENGTH.match(key) or key == "character varying" else key


def arrow_type_name(name: object) -> str | None:
    """The Arrow type (as pyarrow.type_for_alias reads it) a type name stands for; None when the
    name is not one the platform knows."""
    return TYPE_NAMES.get(type_key(name)) if isinstance(name, str) else None


def arrow_type(alias: str) -> pa.DataType:
    """The Arrow type for an Arrow type name of TYPE_NAMES (also the zoned timestamp, which
    pyarrow.type_for_alias does not read)."""
    zoned = re.fullmatch(r"timestamp\[(\w+), tz=([^\]]+)\]", alias)
    return pa.timestamp(zoned[1], tz=zoned[2]) if zoned else pa.type_for_alias(alias)


def accepted_type_names() -> str:
    """The accepted names, for a message: the platform's own first, then the aliases."""
    return ", ".join([*TYPES, *ALIASES, "varchar(n)"])


@dataclass(frozen=True)
class Feature:
    name: str
    type: str = "float"

    def to_dict(self) -> dict[str, str]:
        # Shown only: any name the author wrote, kept as text.
        return {"name": self.name, "type": self.type if isinstance(self.type, str) else str(self.type)}


@dataclass(frozen=True)
class Prediction:
    name: str
    type: str = "float"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}

    @property
    def arrow_type(self) -> str | None:
        """Its column's Arrow type in the output table (None for a type name the platform refuses)."""
        return arrow_type_name(self.type)


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
