"""YAML configuration files validated by pydantic models, with errors that name the offending field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class ConfigFileError(ValueError):
    """An unreadable or invalid configuration file; ``field`` is the dotted path of the first offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def load_config_file(source: Path, model: type[Model], *, what: str, error: type[ConfigFileError]) -> Model:
    """``source`` parsed as YAML and validated as ``model``; failures raise ``error`` naming ``what``."""
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{source}: cannot read {what}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{source}: the {what} must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [(".".join(str(part) for part in err["loc"]) or "<root>", err["msg"]) for err in exc.errors()]
        detail = "; ".join(f"{field}: {msg}" for field, msg in problems)
        raise error(f"{source}: invalid {what}: {detail}", field=problems[0][0]) from exc
