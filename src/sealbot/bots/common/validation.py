"""Config validation that says which field is wrong and why.

Pydantic reports field errors with their location; cross-field checks raised from a
model validator would lose it, so they raise ``FieldError`` carrying the path, and
``parse_config`` turns every error into ``domain.errors.InvalidConfig(path, reason)``
(the web layer's 422, the CLI's one-line message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sealbot.domain.errors import InvalidConfig

M = TypeVar("M", bound=BaseModel)


class FieldError(ValueError):
    """A cross-field rule broken at ``field`` (a dotted path relative to the model)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def parse_config(model: type[M], data: Mapping[str, Any] | M) -> M:
    """Validate ``data`` into ``model`` or raise ``InvalidConfig`` naming the first bad field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise to_invalid_config(exc) from None


def to_invalid_config(exc: ValidationError) -> InvalidConfig:
    """The first error of ``exc`` as ``InvalidConfig(path, reason)``."""
    error = exc.errors(include_url=False)[0]
    path = [str(part) for part in error["loc"]]
    reason = error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        path = [*path, *cause.field.split(".")] if cause.field else path
        reason = cause.reason
    elif reason.startswith("Value error, "):
        reason = reason.removeprefix("Value error, ")
    return InvalidConfig(".".join(path) or "config", reason)
