"""SECURITY.md names only settings that exist, spelled as the environment spells them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workers.settings import Settings

SECURITY_MD = Path(__file__).resolve().parents[1] / "SECURITY.md"


def setting_names(model: type[BaseModel], prefix: str = "LINEGUARD_") -> set[str]:
    """Every environment variable a settings model reads, nested fields with ``__``."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= setting_names(annotation, name + "__")
        else:
            names.add(name)
    return names


def test_every_setting_named_in_security_md_exists() -> None:
    mentioned = set(re.findall(r"LINEGUARD_[A-Z0-9_]*[A-Z0-9]", SECURITY_MD.read_text()))
    assert mentioned, "SECURITY.md names no settings"
    assert mentioned <= setting_names(Settings), sorted(mentioned - setting_names(Settings))


def test_the_security_settings_table_covers_the_security_settings() -> None:
    text = SECURITY_MD.read_text()
    table = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `LINEGUARD_")}
    security = {name for name in setting_names(Settings) if name.startswith("LINEGUARD_SECURITY__")}
    assert len(security) == 8
    assert security | {"LINEGUARD_STATUS_TOKEN"} <= table


def test_the_name_finder_sees_nested_settings() -> None:
    names = setting_names(Settings)
    assert "LINEGUARD_SECURITY__SSL_CAFILE" in names
    assert "LINEGUARD_TOPICS__DECISIONS" in names
    assert "LINEGUARD_SECURITY" not in names
