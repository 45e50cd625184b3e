"""Write the published definition back to pack files, for a database whose files were lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import Engine

from runtime.model import App
from runtime.schema import published


def export_app(app: App, folder: str | Path) -> list[Path]:
    """`app.yaml` and `forms/<form>.yaml`, with default values left out."""
    root = Path(folder)
    (root / "forms").mkdir(parents=True, exist_ok=True)
    head = app.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude={"forms"})
    written = [_dump(root / "app.yaml", head)]
    for form in app.forms:
        body = form.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        written.append(_dump(root / "forms" / f"{form.form}.yaml", body))
    return written


def export_published(engine: Engine, folder: str | Path, app_key: str | None = None) -> list[Path]:
    """Export the latest published version of each app (or of one) into `folder/<app>/`."""
    with engine.connect() as conn:
        keys = [app_key] if app_key else sorted(published.current_hashes(conn))
        versions = [published.latest(conn, key) for key in keys]
    written: list[Path] = []
    for version in versions:
        if version is not None:
            written.extend(export_app(version.model(), Path(folder) / version.app))
    return written


def _dump(path: Path, data: dict[str, Any]) -> Path:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path
