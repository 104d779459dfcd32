"""Artifacts in an S3-compatible object store (``--artifact-store s3://bucket/prefix``).

The object of ``models/<name>/<version>/<file>`` is ``<prefix>/models/<name>/<version>/
<file>`` in the bucket. An upload is a multipart upload *to that final key*, in parts of
:data:`PART_SIZE` sent as the bytes arrive (at most one part in memory) and hashed on the
way; S3 shows no object under a key until its multipart upload is completed, which
:meth:`S3ArtifactStore.install` does inside the registering transaction. So:

* a cut-off or rejected upload is aborted and never was an object;
* a crash before the commit leaves either an incomplete upload (invisible; aborted by the
  start-up :meth:`~S3ArtifactStore.sweep` once older than :data:`ABANDONED_UPLOAD_SECONDS`,
  which leaves other replicas' uploads in progress alone) or a complete object without a
  row, which the registry's start-up recovery deletes (:mod:`.artifacts`);
* a row never names a missing object: the object is complete before the row commits.

An empty artifact (no part to upload) is written with one PUT at install.

Endpoint, region and credentials come from boto3's standard sources (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, profiles, instance
roles); ``--s3-endpoint-url`` overrides the endpoint (MinIO, Ceph, moto).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from neural.mlops.server.clock import Clock, SystemClock
from neural.mlops.server.errors import DataLoss, Unavailable
from neural.mlops.server.registry.artifacts import (
    ABANDONED_UPLOAD_SECONDS,
    CHUNK,
    ArtifactStore,
    StagedFile,
    check_digest,
    split_relative,
)

log = structlog.get_logger(__name__)

PART_SIZE = 8 * 1024 * 1024
_MISSING = ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or without leading/trailing "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ValueError(f"artifact_store: expected s3://BUCKET[/PREFIX], got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"artifact_store: no bucket in {url!r}")
        return cls(bucket, prefix.strip("/"))

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key


@dataclass(frozen=True, slots=True)
class _S3Staged(StagedFile):
    upload_id: str  # "" for an empty artifact (nothing uploaded yet)
    parts: tuple[tuple[int, str], ...]  # (part number, ETag)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def s3_client(endpoint_url: str = "") -> Any:
    """A boto3 S3 client on the standard configuration sources (thread-safe)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None,
        config=Config(retries={"mode": "standard"}),
    )


class S3ArtifactStore(ArtifactStore):
    def __init__(self, location: S3Location, *, endpoint_url: str = "", client: Any = None,
                 clock: Clock | None = None) -> None:
        self.location = location
        self.client = client if client is not None else s3_client(endpoint_url)
        self.clock = clock or SystemClock()

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """One S3 request off the event loop; a connection failure is Unavailable."""
        from botocore.exceptions import BotoCoreError

        try:
            return await asyncio.to_thread(getattr(self.client, method),
                                           Bucket=self.location.bucket, **kwargs)
        except BotoCoreError as exc:  # no answer at all (endpoint down, DNS)
            raise Unavailable(f"object store unreachable: {exc}") from exc

    async def stage(self, relative: str, chunks: AsyncIterator[bytes]) -> StagedFile:
        key = self.location.key(relative)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id = ""
        creating: asyncio.Future[Any] | None = None
        parts: list[tuple[int, str]] = []

        async def send(part: bytes) -> None:
            nonlocal upload_id, creating
            if not upload_id:
                # Shielded: a cut-off upload must still learn the id of an upload S3 made,
                # or it could not abort it.
                creating = asyncio.ensure_future(self._call("create_multipart_upload", Key=key))
                upload_id = (await asyncio.shield(creating))["UploadId"]
            number = len(parts) + 1
            answer = await self._call("upload_part", Key=key, UploadId=upload_id,
                                      PartNumber=number, Body=part)
            parts.append((number, answer["ETag"]))

        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= PART_SIZE:
                    part = bytes(buffer[:PART_SIZE])
                    del buffer[:PART_SIZE]
                    await send(part)
            if buffer:
                await send(bytes(buffer))  # the last part may be smaller than the minimum
        except BaseException:
            if not upload_id and creating is not None:
                with contextlib.suppress(BaseException):
                    upload_id = (await creating)["UploadId"]
            if upload_id:
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return _S3Staged(relative, digest.hexdigest(), size, upload_id, tuple(parts))

    async def install(self, staged: StagedFile) -> None:
        assert isinstance(staged, _S3Staged)
        key = self.location.key(staged.relative)
        if not staged.upload_id:
            await self._call("put_object", Key=key, Body=b"")
            return
        await self._call(
            "complete_multipart_upload", Key=key, UploadId=staged.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in staged.parts]},
        )

    async def discard(self, staged: StagedFile) -> None:
        assert isinstance(staged, _S3Staged)
        if staged.upload_id:
            await self._abort(self.location.key(staged.relative), staged.upload_id)

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except Exception as exc:  # completed, already aborted, or unreachable: the sweep's
            log.warning("multipart upload not aborted", key=key, error=str(exc))

    async def _keys(self, relative_prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = await self._call("list_objects_v2",
                                    Prefix=self.location.key(relative_prefix), **token)
            keys += [obj["Key"] for obj in page.get("Contents", ())]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    async def remove_version(self, name: str, version: str) -> None:
        keys = await self._keys(f"models/{name}/{version}/")
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            await self._call("delete_objects", Delete={
                "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True,
            })

    async def version_keys(self) -> set[tuple[str, str]]:
        found = set()
        for key in await self._keys("models/"):
            name_version = split_relative(self.location.relative(key))
            if name_version is not None:
                found.add(name_version)
        return found

    async def sweep(self) -> None:
        cutoff = self.clock.now() - timedelta(seconds=ABANDONED_UPLOAD_SECONDS)
        token: dict[str, str] = {}
        aborted = 0
        while True:
            page = await self._call("list_multipart_uploads",
                                    Prefix=self.location.key("models/"), **token)
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] < cutoff:
                    await self._abort(upload["Key"], upload["UploadId"])
                    aborted += 1
            if not page.get("IsTruncated"):
                break
            token = {"KeyMarker": page["NextKeyMarker"],
                     "UploadIdMarker": page["NextUploadIdMarker"]}
        if aborted:
            log.warning("abandoned artifact uploads aborted", uploads=aborted)

    def open_verified(self, relative: str, sha256: str) -> Iterator[bytes]:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
        )

        try:
            answer = self.client.get_object(Bucket=self.location.bucket,
                                            Key=self.location.key(relative))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise DataLoss(f"artifact object is missing: {relative}") from None
            raise
        except BotoCoreError as exc:
            raise Unavailable(f"object store unreachable: {exc}") from exc
        return self._verified(answer["Body"], relative, sha256)

    @staticmethod
    def _verified(body: Any, relative: str, sha256: str) -> Iterator[bytes]:
        digest = hashlib.sha256()
        try:
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
                yield chunk
        finally:
            body.close()
        check_digest(relative, digest, sha256)
