"""The file store behind attachment fields: bytes in a local folder, facts in `formloom_files`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, insert, select

from runtime.records.errors import NotFound, invalid
from runtime.schema.system import files
from runtime.schema.types import utcnow

CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 50 * 1024 * 1024


class FileStore:
    """Content-addressed files under `root/ab/abcdef…` (the SHA-256 of their bytes)."""

    def __init__(self, root: str | Path, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.root = Path(root)
        self.max_size = max_size

    def save(
        self, conn: Connection, stream: BinaryIO, name: str, content_type: str, user_id: int | None
    ) -> dict[str, Any]:
        """Store an upload and record it; answers the file's JSON."""
        clean_name = Path(name or "file").name[:255] or "file"
        digest, size, temp = self._spool(stream)
        target = self.path_of(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(temp)
        else:
            os.replace(temp, target)
        row = {
            "name": clean_name,
            "size": size,
            "content_type": content_type[:255] or "application/octet-stream",
            "checksum": digest,
            "created_at": utcnow(),
            "created_by": user_id,
        }
        file_id = conn.execute(insert(files).values(**row).returning(files.c.id)).scalar_one()
        return file_json({"id": file_id, **row})

    def describe(self, conn: Connection, file_id: int) -> dict[str, Any]:
        """The facts of a stored file; NotFound when unknown."""
        row = conn.execute(select(files).where(files.c.id == file_id)).mappings().first()
        if row is None:
            raise NotFound("file", file_id)
        return file_json(dict(row))

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
    """A file row as the API shows it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "size": row["size"],
        "type": row["content_type"],
        "checksum": row["checksum"],
        "url": f"/api/v1/files/{row['id']}/content",
    }
