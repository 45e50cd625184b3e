"""The file store behind attachment fields: bytes in a local folder, facts in `formloom_files`."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, insert

from runtime.records.errors import invalid
from runtime.records.text import scrubbed
from runtime.schema.system import files
from runtime.schema.types import utcnow

CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 50 * 1024 * 1024


def new_public_id() -> str:
    """A fresh, unguessable name for a file: 128 random bits in 22 URL-safe characters."""
    return secrets.token_urlsafe(16)


class FileStore:
    """Content-addressed files under `root/ab/abcdef…` (the SHA-256 of their bytes)."""

    def __init__(self, root: str | Path, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.root = Path(root)
        self.max_size = max_size

    def save(
        self, conn: Connection, stream: BinaryIO, name: str, content_type: str, user_id: int | None
    ) -> dict[str, Any]:
        """Store an upload and record it; answers the file's JSON."""
        clean_name = Path(scrubbed(name or "") or "file").name[:255] or "file"
        digest, size, temp = self._spool(stream)
        target = self.path_of(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(temp)
        else:
            os.replace(temp, target)
        row = {
            "public_id": new_public_id(),
            "name": clean_name,
            "size": size,
            "content_type": scrubbed(content_type)[:255] or "application/octet-stream",
            "checksum": digest,
            "created_at": utcnow(),
            "created_by": user_id,
        }
        conn.execute(insert(files).values(**row))
        return file_json(row)

    def path_of(self, checksum: str) -> Path:
        """Where the bytes with this checksum live."""
        return self.root / checksum[:2] / checksum

    def _spool(self, stream: BinaryIO) -> tuple[str, int, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle, temp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > self.max_size:
                    out.close()
                    os.unlink(temp)
                    raise invalid("file", "max_size", f"files may be at most {self.max_size} bytes")
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest(), size, temp


def file_json(row: dict[str, Any]) -> dict[str, Any]:
    """A file row as the API shows it: named by its public id, never by its sequential one."""
    return {
        "id": row["public_id"],
        "name": row["name"],
        "size": row["size"],
        "type": row["content_type"],
        "checksum": row["checksum"],
        "url": file_url(row["public_id"]),
    }


def file_url(public_id: str) -> str:
    """Where a file's bytes are downloaded."""
    return f"/api/v1/files/{public_id}/content"
