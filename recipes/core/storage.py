"""Small artifacts (configs, scores, metadata) on a local path or an ``s3://`` URI.

Writes are whole or not at all: locally a temporary name then ``os.replace``; on S3 one ``put_object``, which is
atomic per object. ``S3_ENDPOINT_URL`` selects an S3-compatible endpoint, as it does for Composer and streaming.
Checkpoints themselves go through Composer (``save_folder``, ``composer.utils.get_file``).

Composer's ``S3ObjectStore`` (0.32.1) does not fit these small objects: it moves files, not bytes (every read and
write would go through a temporary file), its ``get_object_size`` issues a GET (``exists`` on a checkpoint would
open it), it lists recursively with no delimiter, it reports a 403 as a missing object (a credentials error would
read "does not exist"), and ``check_reachable`` would still need the raw client's ``head_bucket``.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from recipes.core.errors import UsageError

__all__ = [
    'check_reachable',
    'exists',
    'is_s3',
    'join',
    'list_names',
    'read_bytes',
    'split_s3',
    'write_bytes',
]


def is_s3(uri: str) -> bool:
    return uri.startswith('s3://')


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a URI with ``/``."""
    if not is_s3(base):
        return os.path.join(base, *parts)
    return '/'.join([base.rstrip('/'), *(p.strip('/') for p in parts)])


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; a URI without a bucket is a UsageError."""
    parsed = urlparse(uri)
    if parsed.scheme != 's3' or not parsed.netloc:
        raise UsageError(f'{uri!r} is not an S3 URI with a bucket: write it as s3://BUCKET/PREFIX')
    return parsed.netloc, parsed.path.lstrip('/')


def _endpoint() -> str:
    return os.environ.get('S3_ENDPOINT_URL') or 'the default AWS endpoint'


@lru_cache(maxsize=8)
def _cached_client(endpoint: str | None, connect_timeout: float, attempts: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=connect_timeout, read_timeout=60, retries={'max_attempts': attempts, 'mode': 'standard'})
    return boto3.client('s3', endpoint_url=endpoint, config=config)


def _client(connect_timeout: float, attempts: int) -> Any:
    return _cached_client(os.environ.get('S3_ENDPOINT_URL') or None, connect_timeout, attempts)


def _s3() -> Any:
    # Standard retry mode backs off exponentially (up to 20 s a try): rides out an endpoint away for seconds.
    return _client(10.0, 8)


def check_reachable(uri: str) -> None:
    """Fail fast, with the endpoint and bucket named, when an ``s3://`` URI cannot be reached.

    Local paths pass. Used before anything heavy starts, so a wrong endpoint costs seconds, not a queued job.
    """
    if not is_s3(uri):
        return
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _ = split_s3(uri)
    try:
        _client(3.0, 2).head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response.get('Error', {}).get('Code', '')
        if code in ('404', 'NoSuchBucket'):
            raise UsageError(f'bucket {bucket!r} of {uri} does not exist at {_endpoint()}: create it or fix the URI') from e
        raise UsageError(f'cannot access bucket {bucket!r} of {uri} at {_endpoint()} ({code}): check credentials') from e
    except BotoCoreError as e:
        raise UsageError(
            f'cannot reach S3 endpoint {_endpoint()} for {uri} ({type(e).__name__}): '
            'check S3_ENDPOINT_URL and the network',
        ) from e


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return os.path.exists(uri)
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    try:
        _s3().head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response.get('Error', {}).get('Code') in ('404', 'NoSuchKey', 'NotFound'):
            return False
        raise


def list_names(folder: str) -> list[str]:
    """The names of the files directly inside a folder or S3 prefix (empty when there is none)."""
    if not is_s3(folder):
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    bucket, prefix = split_s3(folder)
    prefix = prefix.rstrip('/') + '/' if prefix else ''
    names: list[str] = []
    for page in _s3().get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix, Delimiter='/'):
        names += [obj['Key'][len(prefix) :] for obj in page.get('Contents', [])]
    return sorted(names)


def read_bytes(uri: str) -> bytes:
    """Read a whole file or object; a missing one is a UsageError naming it."""
    if not is_s3(uri):
        if not os.path.isfile(uri):
            raise UsageError(f'{uri} does not exist')
        with open(uri, 'rb') as f:
            return f.read()
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    try:
        return _s3().get_object(Bucket=bucket, Key=key)['Body'].read()
    except ClientError as e:
        if e.response.get('Error', {}).get('Code') in ('404', 'NoSuchKey', 'NoSuchBucket'):
            raise UsageError(f'{uri} does not exist at {_endpoint()}') from e
        raise


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file or object, never a partial one."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3().put_object(Bucket=bucket, Key=key, Body=data)
        return
    folder = os.path.dirname(os.path.abspath(uri))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-', suffix=os.path.basename(uri))
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide artifacts from the other users of a shared folder
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, uri)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
