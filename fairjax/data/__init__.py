"""Tabular data: column roles (`Schema`), the validated `TabularDataset`, and the encoder."""

from fairjax.data.encoder import ColumnCodec, TabularEncoder, fit_encoder
from fairjax.data.schema import Schema, TabularDataset, infer_schema, validate_frame

__all__ = [
    "ColumnCodec",
    "Schema",
    "TabularDataset",
    "TabularEncoder",
    "fit_encoder",
    "infer_schema",
    "validate_frame",
]
