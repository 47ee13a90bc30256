"""Streaming uploads to a temporary folder with a size limit (413) and an emptiness check."""

from __future__ import annotations

from pathlib import Path

from fastapi import UploadFile

from app.api.errors import InvalidParameter, PayloadTooLarge


async def save_upload(upload: UploadFile, directory: Path, limit_bytes: int, field: str) -> Path:
    """Write ``upload`` into ``directory`` chunk by chunk; 413 past ``limit_bytes``, 400 when empty."""
    name = Path(upload.filename or field).name or field
    target = directory / name
    size = 0
    with target.open("wb") as handle:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit_bytes:
                raise PayloadTooLarge(
                    f"{field} exceeds the {limit_bytes // (1 << 20)} MiB upload limit", field=field
                )
            handle.write(chunk)
    if size == 0:
        raise InvalidParameter(f"{field} is empty", parameter=field)
    return target
