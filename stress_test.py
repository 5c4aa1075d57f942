#!/usr/bin/env python3
"""Stress test and course-compatible client for the DPIP REST API.

Python 3.11 standard library only: nothing to install.

Actions (``-action``):

  generate  write N test frames 0.png .. N-1.png (colourful PNGs made with zlib + struct)
              python3 stress_test.py -action generate -count 200 -size 1280x720 -frames-path frames

  push      upload {frames}/0.png .. N-1.png, in order, into a workload (as the course script does)
              python3 stress_test.py -action push -workload-id ID -token TOKEN -frames-path frames

  pull      download the workload's filtered images into a directory, named 0.png, 1.png, ...
            by their position in ``filtered_images`` (upload order; failed images are absent)
              python3 stress_test.py -action pull -workload-id ID -token TOKEN -frames-path frames

  run       the whole flow: log in, create a workload, upload frames in parallel, watch the
            workload until it completes, pull and verify every result, delete the workload
            with its images (unless -keep), print a report
              python3 stress_test.py -action run -count 200 --api http://localhost:8080 -user alice -password alice-secret

Every option takes one or two dashes (``-token`` or ``--token``). Instead of ``-token``, give
``-user`` and ``-password`` (or the DPIP_PASSWORD environment variable) to log in with HTTP Basic;
with ``-register`` the user is created first when the login fails. Without ``-frames-path``,
``run`` generates ``-count`` frames of ``-size`` into a temporary directory.

The workload that ``run`` (and ``push`` without ``-workload-id``) creates applies ``-filter`` (a
course filter, grayscale by default) or ``-operations``, a chain of operations: steps separated
by ``,``, each an operation's name with its parameters after ``:`` as ``name=value``:

    -operations 'resize:width=640,grayscale,format:type=webp:quality=80'

The parameters are typed as GET /operations declares them (whole numbers, numbers, true/false,
one of a list), so that the server gets a JSON chain; a spec that does not read, or names an
operation or a parameter the server does not have, is a usage error, as is a chain the server
refuses (422, with its message).

What ``run`` measures and checks:

  * upload throughput (images/s, MB/s) and upload request latency;
  * end-to-end throughput: images done per second from the first upload to the poll that saw
    the workload completed;
  * per-image latency from the upload response to the first poll of GET /workloads/{id}
    (every ``-poll-interval`` s) listing its filtered image. Filtered images are tracked by id,
    not by position: ``filtered_images`` holds only finished jobs, so positions shift while jobs
    finish out of order. At the end, filtered images are matched to their originals by id, from
    GET /images?workload_id= (each filtered image names its source). A server without that listing
    gets them matched by upload order, skipping the originals listed under ``failures``; with
    parallel uploads that order is only known approximately (the order of the upload responses),
    which can swap neighbours;
  * every filtered image: its signature and structure (PNG chunk CRCs and zlib stream size; JPEG
    SOF and EOI markers; the RIFF length of a WebP; the boxes of an AVIF), its Content-Type, and
    its format and dimensions, read from its header, against those the workload's chain makes of
    its original (compared as a multiset when parallel uploads of differently shaped frames make
    the pairing ambiguous). The chain is the one the workload view lists with every default
    (a course filter is its one step): resize, thumbnail, crop and rotate change the size, with
    the server's own rounding (resized_size, a port of resizedSize in
    common/operations/definitions.ts); the format is the format step's, else the original's.
    When the chain makes a grey image (a grayscale step, then only steps that move, scale or blur
    every channel alike), R = G = B in every pixel of a PNG result. That check needs no
    unfiltering: PNG row filters predict each byte from the same byte of neighbouring pixels, so
    the raw samples have R = G = B everywhere exactly when the filtered bytes do. JPEG, WebP and
    AVIF pixels are not checked (decoding them needs more than the standard library).

At the end, ``run`` deletes its workload with every image of it (DELETE /workloads/{id}) and the
report says what that freed, as the server counted it: images, and bytes both in binary units and
exact. ``-keep`` leaves the workload on the server instead. A deletion that fails does not change
the verification results above it, but it is listed under the errors and the run fails: a run that
passes leaves nothing behind. A run cut short by a fatal error or Ctrl-C deletes its workload too
(and says so on stderr). A workload cancelled by its owner elsewhere while it runs ends the wait at
once, and its unfiltered images count as errors. While a workload waits because no live worker
can run it (``waiting_for`` in its view: a tag no worker has, an operation or a format no worker
has), the progress line says why, and so does the error of the images left at the timeout.

Uploads go one of two ways. Through the API, each frame is one POST /images. Through upload
slots, which a server that keeps its images in object storage offers (``uploads.slots`` in GET
/status), frames go in groups of up to 8 (fewer when that keeps every ``-concurrency`` lane busy):
one POST /uploads opens a slot for each frame of the group (an image id and a presigned URL), each
frame is a PUT of its bytes straight to the object store at its URL with exactly the headers the
slot names (no token), then one POST /uploads/confirm confirms the group's frames, each answered on
its own. A group the server refuses whole (one frame too large, say) goes one frame a request
(POST /uploads, PUT, POST /uploads/{id}/confirm), so each frame gets its own answer. ``-upload-via auto`` (the default) uses slots when GET /status says the
server offers them and POST /images otherwise; ``-upload-via api`` or ``-upload-via slots`` forces
one (slots from a server that offers none is an error before anything is uploaded). ``run``'s
report and ``push``'s log say which way the uploads went. A presigned URL is never printed: it lets
whoever has it write the object until it expires, so an error of the PUT names the frame, the image
and the HTTP status (and the store's error code), not the URL.

The exit status is 0 when everything passed, 1 when anything failed or came back wrong, or the
workload could not be deleted (or on a fatal error), 2 on a usage error and 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import http.client
import json
import math
import os
import re
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, TextIO

DEFAULT_API = "http://localhost:8080"
DEFAULT_COUNT = 200
DEFAULT_SIZE = (640, 480)
DEFAULT_RUN_CONCURRENCY = 4
DEFAULT_PUSH_CONCURRENCY = 1  # one at a time keeps the server's upload order exactly the frame order
DEFAULT_FRAMES_PATH = "frames"
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_POLL_INTERVAL_S = 0.15
HTTP_TIMEOUT_S = 120.0
THROTTLE_RETRIES = 5
THROTTLE_MAX_WAIT_S = 30.0
UPLOAD_VIA = ("auto", "api", "slots")
SLOT_TYPES = frozenset({"image/png", "image/jpeg"})
SLOTS_PER_REQUEST = 8  # frames whose slots one POST /uploads opens, and one POST /uploads/confirm confirms
PROGRESS_TTY_INTERVAL_S = 0.2
PROGRESS_LOG_INTERVAL_S = 5.0
PROGRESS_BAR_WIDTH = 24
MAX_EXAMPLE_CHARS = 160

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

FILTERS = ("grayscale", "blur")
DEFAULT_FILTER = "grayscale"
OPERATIONS_EXAMPLE = "resize:width=640,grayscale,format:type=webp:quality=80"
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}
COURSE_IMAGE_TYPES = ("filtered", "original")  # what older course scripts passed as -image-type
EXTENSION_OF_FORMAT = {"png": "png", "jpeg": "jpg", "webp": "webp", "avif": "avif"}
MIME_OF_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
AVIF_BRANDS = frozenset({b"avif", b"avis"})
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
PNG_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (x offset, y offset, x step, y step)
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class StressTestError(Exception):
    """A fatal error: its message is printed and the program exits with status 1."""


class UsageError(StressTestError):
    """Options that do not fit together (exit status 2)."""


class ApiError(StressTestError):
    """The API answered with an error status and (usually) a JSON {error: {code, message}} body."""

    def __init__(self, method: str, path: str, status: int, message: str):
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class ApiUnreachable(StressTestError):
    """No HTTP answer at all: connection refused or reset, timeout, malformed response."""


class ObjectStoreError(StressTestError):
    """A PUT to a presigned URL that failed: its status (0: no answer) and what went wrong, never the URL."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class ImageFormatError(ValueError):
    """Bytes that are not a well-formed PNG, JPEG, WebP or AVIF."""


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


@dataclass
class HttpResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def error_message(response: HttpResponse) -> str:
    """The message of an API error body {error: {code, message}}, or the start of whatever came."""
    try:
        message = json.loads(response.body)["error"]["message"]
        if isinstance(message, str) and message:
            return message
    except (ValueError, KeyError, TypeError):
        pass
    text = response.body[:200].decode("utf-8", "replace").strip()
    return text or http.client.responses.get(response.status, "error")


def encode_multipart(fields: dict[str, str], file_field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file; returns (body, Content-Type)."""
    boundary = f"----dpip-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class ConnectionPool:
    """Keep-alive HTTP connections, one per thread and address (safe to share between threads)."""

    def __init__(self, timeout: float):
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []

    def get(self, scheme: str, host: str, port: int | None) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the address, and whether it has served a request before."""
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        address = (scheme, host, port)
        if address in pool:
            return pool[address], True
        factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = factory(host, port, timeout=self._timeout)
        pool[address] = connection
        with self._lock:
            self._connections.append(connection)
        return connection, False

    def drop(self, scheme: str, host: str, port: int | None) -> None:
        """Closes this thread's connection to the address: the next request opens a new one."""
        connection = getattr(self._local, "pool", {}).pop((scheme, host, port), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()


class ApiClient:
    """The DPIP REST API over keep-alive connections, one per thread (safe to share between threads).

    Requests refused with 429 or 503 are retried after Retry-After; a request that finds its
    kept-alive connection closed by the server is sent again once on a new connection.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = HTTP_TIMEOUT_S):
        parts = urllib.parse.urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f'bad API address "{base_url}": use http://host:port')
        self.base_url = base_url
        self.token = token
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._pool = ConnectionPool(timeout)
        self._lock = threading.Lock()
        self._throttled = 0

    @property
    def throttled(self) -> int:
        """How many requests were answered 429/503 and retried."""
        with self._lock:
            return self._throttled

    # -- transport --

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether it has served a request before."""
        return self._pool.get(self._scheme, self._host, self._port)

    def _drop_connection(self) -> None:
        self._pool.drop(self._scheme, self._host, self._port)

    def close(self) -> None:
        self._pool.close()

    def _send_once(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> HttpResponse:
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self._drop_connection()
                if reused and attempt == 1:
                    continue  # the server closed an idle kept-alive connection: try a fresh one
                raise ApiUnreachable(f"{method} {path}: connection to {self.base_url} lost: {error}") from error
            except (OSError, http.client.HTTPException) as error:
                self._drop_connection()
                raise ApiUnreachable(f"{method} {path}: cannot reach {self.base_url}: {error}") from error
            except BaseException:
                # cut short (Ctrl-C): the connection is mid-exchange, and the next request on it would fail
                self._drop_connection()
                raise
            if response.will_close:
                self._drop_connection()
            return HttpResponse(response.status, response.headers, payload)
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                authenticate: bool = True) -> HttpResponse:
        """Sends a request; raises ApiError for an error status, ApiUnreachable without an answer."""
        all_headers = {"Accept": "application/json, image/*", **(headers or {})}
        if authenticate and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(THROTTLE_RETRIES + 1):
            response = self._send_once(method, path, body, all_headers)
            if response.status in (429, 503) and attempt < THROTTLE_RETRIES:
                with self._lock:
                    self._throttled += 1
                time.sleep(retry_after_seconds(response, attempt))
                continue
            if response.status >= 400:
                raise ApiError(method, path, response.status, error_message(response))
            return response
        raise AssertionError("unreachable")

    def request_json(self, method: str, path: str, payload: dict | None = None, headers: dict[str, str] | None = None,
                     authenticate: bool = True) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        response = self.request(method, path, body, all_headers, authenticate)
        try:
            result = json.loads(response.body)
        except ValueError as error:
            raise StressTestError(f"{method} {path}: the answer is not JSON: {response.body[:120]!r}") from error
        if not isinstance(result, dict):
            raise StressTestError(f"{method} {path}: expected a JSON object, got {result!r:.120}")
        return result

    # -- endpoints --

    def login(self, user: str, password: str) -> str:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        answer = self.request_json("POST", "/login", headers={"Authorization": f"Basic {credentials}"}, authenticate=False)
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise StressTestError(f"POST /login: no token in the answer {answer!r:.120}")
        return token

    def register(self, user: str, password: str) -> None:
        self.request_json("POST", "/register", {"username": user, "password": password}, authenticate=False)

    def status(self) -> dict:
        return self.request_json("GET", "/status")

    def operations(self) -> dict:
        """GET /operations: every operation the server runs, with its parameters (no token needed)."""
        return self.request_json("GET", "/operations", authenticate=False)

    def create_workload(self, filter_name: str | None, workload_name: str | None, operations: list[dict] | None = None) -> dict:
        payload: dict = {"operations": operations} if operations is not None else {"filter": filter_name or DEFAULT_FILTER}
        if workload_name:
            payload["workload_name"] = workload_name
        return self.request_json("POST", "/workloads", payload)

    def workload(self, workload_id: str) -> dict:
        return self.request_json("GET", f"/workloads/{urllib.parse.quote(workload_id, safe='')}")

    def upload_original(self, workload_id: str, filename: str, data: bytes, content_type: str) -> dict:
        body, multipart_type = encode_multipart({"workload_id": workload_id, "type": "original"}, "data", filename, content_type, data)
        response = self.request("POST", "/images", body, {"Content-Type": multipart_type})
        try:
            return json.loads(response.body)
        except ValueError as error:
            raise StressTestError(f"POST /images: the answer is not JSON: {response.body[:120]!r}") from error

    def open_upload_slot(self, workload_id: str, content_type: str, size: int) -> dict:
        """POST /uploads: a slot for one original (its image id, a presigned PUT and where to confirm)."""
        return self.request_json("POST", "/uploads", {"workload_id": workload_id, "content_type": content_type, "bytes": size})

    def confirm_upload(self, image_id: str) -> dict:
        """POST /uploads/{id}/confirm: the bytes put at the slot become an original with its job."""
        return self.request_json("POST", f"/uploads/{urllib.parse.quote(image_id, safe='')}/confirm")

    def open_upload_slots(self, workload_id: str, files: Sequence[tuple[str, int]]) -> list:
        """POST /uploads with ``images``: a slot for each (content type, size), in that order."""
        images = [{"content_type": content_type, "bytes": size} for content_type, size in files]
        answer = self.request_json("POST", "/uploads", {"workload_id": workload_id, "images": images})
        slots = answer.get("slots")
        if not isinstance(slots, list) or len(slots) != len(files) or not all(isinstance(slot, dict) for slot in slots):
            raise StressTestError(f"POST /uploads: {len(files)} slots asked, the answer has {shorten(repr(sorted(answer)))}")
        return slots

    def confirm_uploads(self, image_ids: Sequence[str]) -> list:
        """POST /uploads/confirm: each slot's answer as its own confirm's would be (``status`` beside it)."""
        answer = self.request_json("POST", "/uploads/confirm", {"image_ids": list(image_ids)})
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(image_ids) or \
                not all(isinstance(result, dict) for result in results):
            raise StressTestError(f"POST /uploads/confirm: {len(image_ids)} confirms asked, "
                                  f"the answer has {shorten(repr(sorted(answer)))}")
        return results

    def delete_workload(self, workload_id: str) -> dict:
        return self.request_json("DELETE", f"/workloads/{urllib.parse.quote(workload_id, safe='')}")

    def workload_images(self, workload_id: str) -> dict:
        return self.request_json("GET", f"/images?workload_id={urllib.parse.quote(workload_id, safe='')}")

    def download_image(self, image_id: str) -> HttpResponse:
        return self.request("GET", f"/images/{urllib.parse.quote(image_id, safe='')}")


class ObjectStoreClient:
    """PUTs to presigned URLs of the object store, over keep-alive connections (one per thread and
    address; safe to share between threads). A presigned URL is a credential until it expires: it is
    never part of an error, which names the status and the store's error code only. The request
    carries the headers the slot names and nothing of the API's (no Authorization)."""

    def __init__(self, timeout: float = HTTP_TIMEOUT_S):
        self._pool = ConnectionPool(timeout)
        self._lock = threading.Lock()
        self._throttled = 0

    @property
    def throttled(self) -> int:
        """How many PUTs were answered 500/503 (the store's SlowDown) and sent again."""
        with self._lock:
            return self._throttled

    def close(self) -> None:
        self._pool.close()

    def put(self, url: str, headers: dict[str, str], data: bytes) -> None:
        """PUTs the bytes; raises ObjectStoreError unless the store answers 2xx."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise ObjectStoreError(0, "the upload URL the server gave does not read as a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ObjectStoreError(0, "the upload URL the server gave is not an http(s) URL")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        address = (parts.scheme, parts.hostname, port)
        for attempt in range(THROTTLE_RETRIES + 1):
            status, body, retry_after = self._put_once(address, target, headers, data)
            if status in (500, 503) and attempt < THROTTLE_RETRIES:
                with self._lock:
                    self._throttled += 1
                time.sleep(min(max(retry_after if retry_after is not None else 0.5 * 2 ** attempt, 0.05), THROTTLE_MAX_WAIT_S))
                continue
            if 200 <= status < 300:
                return
            code = re.search(rb"<Code>([A-Za-z0-9.]{1,64})</Code>", body[:4096])
            reason = http.client.responses.get(status, "error")
            raise ObjectStoreError(status, f"the object store answered {code.group(1).decode() if code else reason}")
        raise AssertionError("unreachable")

    def _put_once(self, address: tuple[str, str, int | None], target: str, headers: dict[str, str],
                  data: bytes) -> tuple[int, bytes, float | None]:
        for attempt in (1, 2):
            connection, reused = self._pool.get(*address)
            try:
                # no Accept-Encoding of http.client's own: the slot's headers, Host and Content-Length only
                connection.putrequest("PUT", target, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(data)))
                connection.endheaders(data)
                response = connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self._pool.drop(*address)
                if reused and attempt == 1:
                    continue  # the store closed an idle kept-alive connection: try a fresh one
                raise ObjectStoreError(0, f"the connection to the object store was lost ({type(error).__name__})") from None
            except OSError as error:
                self._pool.drop(*address)
                raise ObjectStoreError(0, f"cannot reach the object store: {error.strerror or type(error).__name__}") from None
            except (http.client.HTTPException, ValueError) as error:
                # their messages may quote the URL: only the kind of error
                self._pool.drop(*address)
                raise ObjectStoreError(0, f"the PUT to the object store failed ({type(error).__name__})") from None
            except BaseException:
                self._pool.drop(*address)  # cut short (Ctrl-C): never reuse a connection mid-exchange
                raise
            if response.will_close:
                self._pool.drop(*address)
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
            return response.status, body, retry_after
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class UploadRoute:
    """Which way originals go: through upload slots (and the object store) or POST /images, and why."""
    slots: bool
    reason: str

    @property
    def text(self) -> str:
        if self.slots:
            return f"upload slots: POST /uploads, PUT to the object store, confirm ({self.reason})"
        return f"POST /images ({self.reason})"


def server_status(client: ApiClient, upload_via: str) -> dict | None:
    """GET /status, for the way uploads go; None from a server without it (a course server) when auto."""
    try:
        return client.status()
    except ApiError as error:
        if error.status == 404 and upload_via == "auto":
            return None
        raise


def upload_route(upload_via: str, status: dict | None) -> UploadRoute:
    """The way -upload-via chooses, given GET /status (None: not asked, for -upload-via api)."""
    if upload_via == "api":
        return UploadRoute(False, "-upload-via api")
    uploads = status.get("uploads") if status else None
    offered = isinstance(uploads, dict) and uploads.get("slots") is True
    if upload_via == "slots":
        if not offered:
            store = (status or {}).get("image_store")
            kind = f" (its image store: {store.get('kind')})" if isinstance(store, dict) and store.get("kind") else ""
            raise StressTestError(f"-upload-via slots: the server offers no upload slots{kind}: "
                                  "they need object storage; use -upload-via api or auto")
        return UploadRoute(True, "-upload-via slots")
    return UploadRoute(True, "auto: the server offers them") if offered else \
        UploadRoute(False, "auto: the server offers no upload slots")


def retry_after_seconds(response: HttpResponse, attempt: int) -> float:
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = 0.5 * 2 ** attempt
    return min(max(wait, 0.05), THROTTLE_MAX_WAIT_S)


def authenticate(client: ApiClient, args: argparse.Namespace) -> None:
    """Gives the client a token: -token as is, or a login with -user/-password (registering with -register)."""
    if args.token:
        client.token = args.token
        return
    if not args.user:
        raise UsageError("give -token TOKEN, or -user NAME and -password PW to log in")
    password = args.password or os.environ.get("DPIP_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError(f"no password for user {args.user}: give -password or set DPIP_PASSWORD")
        password = getpass.getpass(f"password for {args.user}: ")
    try:
        client.token = client.login(args.user, password)
    except ApiError as error:
        if error.status != 401 or not args.register:
            raise
        try:
            client.register(args.user, password)
        except ApiError as register_error:
            if register_error.status == 409:
                raise StressTestError(f"{error} (user {args.user} exists: is the password right?)") from register_error
            raise
        log(f"registered user {args.user}")
        client.token = client.login(args.user, password)


# --------------------------------------------------------------------------------------------
# Image formats: header parsing, structural checks, the grayscale check, PNG encoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "png", "jpeg", "webp" or "avif"
    width: int
    height: int

    @property
    def shape(self) -> str:
        return f"{self.format} {self.width}x{self.height}"


@dataclass(frozen=True)
class PngImage:
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlaced: bool
    palette: bytes | None
    scanlines: bytes  # the inflated IDAT stream: every row with its filter-type byte


def sniff_format(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and AVIF_BRANDS & set(avif_brands(data)):
        return "avif"
    return None


def read_image_info(data: bytes) -> ImageInfo:
    """Format and dimensions from the header only."""
    kind = sniff_format(data)
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageFormatError("PNG without an IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("png", width, height)
    if kind == "jpeg":
        width, height = jpeg_dimensions(data)
        return ImageInfo("jpeg", width, height)
    if kind == "webp":
        width, height = webp_dimensions(data)
        return ImageInfo("webp", width, height)
    if kind == "avif":
        width, height = avif_dimensions(data)
        return ImageInfo("avif", width, height)
    raise ImageFormatError("no PNG, JPEG, WebP or AVIF signature")


def webp_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the first chunk of a WebP: VP8 (lossy: its key frame header), VP8L
    (lossless: 14-bit sides less one after the signature byte) or VP8X (extended: the canvas,
    24-bit sides less one)."""
    if len(data) < 30:
        raise ImageFormatError("truncated WebP header")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[20] & 1 or data[23:26] != b"\x9d\x01\x2a":
            raise ImageFormatError("WebP VP8 chunk without a key frame start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ImageFormatError("WebP VP8L chunk without its signature byte")
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ImageFormatError(f"WebP whose first chunk is {chunk!r}, not VP8, VP8L or VP8X")


def iso_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each ISO BMFF box in data[start:end], which they must fill exactly."""
    position = start
    while position < end:
        if position + 8 > end:
            raise ImageFormatError(f"truncated box header at byte {position}")
        size, kind = struct.unpack(">I4s", data[position:position + 8])
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if position + 16 > end:
                raise ImageFormatError(f"truncated box header at byte {position}")
            (size,) = struct.unpack(">Q", data[position + 8:position + 16])
            header = 16
        elif size == 0:  # to the end of the container
            size = end - position
        if size < header or position + size > end:
            raise ImageFormatError(f"box {kind!r} at byte {position} runs past the end of its container")
        yield kind, position + header, position + size
        position += size


def avif_brands(data: bytes) -> list[bytes]:
    """The major and compatible brands of the leading ftyp box (empty when there is none)."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return []
    (size,) = struct.unpack(">I", data[0:4])
    end = min(size, len(data))
    return [data[8:12]] + [data[offset:offset + 4] for offset in range(16, end - 3, 4)]


def avif_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) of an AVIF's primary image: its ispe property (meta > iprp > ipco), chosen
    through ipma for the item pitm names, turned by a quarter when its irot property says so."""
    try:
        meta = next(((start, end) for kind, start, end in iso_boxes(data, 0, len(data)) if kind == b"meta"), None)
        if meta is None:
            raise ImageFormatError("AVIF without a meta box")
        primary: int | None = None
        properties: list[tuple[bytes, int, int]] = []
        associations: dict[int, list[int]] = {}
        for kind, start, end in iso_boxes(data, meta[0] + 4, meta[1]):  # meta is a full box: version and flags first
            if kind == b"pitm":
                primary = struct.unpack(">H", data[start + 4:start + 6])[0] if data[start] == 0 else \
                    struct.unpack(">I", data[start + 4:start + 8])[0]
            elif kind == b"iprp":
                for child, child_start, child_end in iso_boxes(data, start, end):
                    if child == b"ipco":
                        properties = list(iso_boxes(data, child_start, child_end))
                    elif child == b"ipma":
                        associations = avif_associations(data, child_start)
        chosen = associations.get(primary) if primary is not None else None
        candidates = [properties[index - 1] for index in chosen if 0 < index <= len(properties)] if chosen else properties
        ispe = next(((start, end) for kind, start, end in candidates if kind == b"ispe"), None)
        if ispe is None:
            raise ImageFormatError("AVIF without an ispe (image size) property")
        width, height = struct.unpack(">II", data[ispe[0] + 4:ispe[0] + 12])
        irot = next((start for kind, start, _ in candidates if kind == b"irot"), None)
        if irot is not None and data[irot] & 3 in (1, 3):
            width, height = height, width
        return width, height
    except (struct.error, IndexError) as error:
        raise ImageFormatError(f"truncated AVIF header: {error}") from error


def avif_associations(data: bytes, start: int) -> dict[int, list[int]]:
    """An ipma box: item id -> the (1-based) indexes of its properties in ipco."""
    version = data[start]
    wide = data[start + 3] & 1  # flags: 15-bit indexes instead of 7-bit
    (count,) = struct.unpack(">I", data[start + 4:start + 8])
    position = start + 8
    associations: dict[int, list[int]] = {}
    for _ in range(count):
        if version < 1:
            (item,) = struct.unpack(">H", data[position:position + 2])
            position += 2
        else:
            (item,) = struct.unpack(">I", data[position:position + 4])
            position += 4
        indexes = []
        for _ in range(data[position]):
            if wide:
                (value,) = struct.unpack(">H", data[position + 1:position + 3])
                indexes.append(value & 0x7FFF)
                position += 2
            else:
                indexes.append(data[position + 1] & 0x7F)
                position += 1
        position += 1
        associations[item] = indexes
    return associations


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the first SOF segment."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ImageFormatError(f"corrupt JPEG: no marker at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[position + 2:position + 4])
        if marker in JPEG_SOF_MARKERS:
            if position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width, height
        position += 2 + length
    raise ImageFormatError("JPEG without a frame header (SOF)")


def parse_png(data: bytes) -> PngImage:
    """Walks every chunk (checking CRCs) and inflates the image data; raises ImageFormatError."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageFormatError("no PNG signature")
    position = len(PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    palette: bytes | None = None
    idat: list[bytes] = []
    while True:
        if position + 12 > len(data):
            raise ImageFormatError("truncated PNG: no IEND chunk")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise ImageFormatError(f"truncated PNG: chunk {kind!r} runs past the end")
        chunk = data[position + 8:end - 4]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + chunk) != crc:
            raise ImageFormatError(f"PNG chunk {kind.decode('latin-1')} has a wrong CRC")
        if header is None and kind != b"IHDR":
            raise ImageFormatError("PNG does not start with IHDR")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"PLTE":
            palette = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        position = end
    width, height, bit_depth, color_type, compression, filter_method, interlace = header
    if color_type not in PNG_CHANNELS or bit_depth not in PNG_BIT_DEPTHS[color_type]:
        raise ImageFormatError(f"PNG with invalid colour type {color_type} / bit depth {bit_depth}")
    if compression != 0 or filter_method != 0 or interlace not in (0, 1) or width == 0 or height == 0:
        raise ImageFormatError("PNG with an invalid IHDR")
    try:
        scanlines = zlib.decompress(b"".join(idat))
    except zlib.error as error:
        raise ImageFormatError(f"PNG image data does not inflate: {error}") from error
    image = PngImage(width, height, bit_depth, color_type, interlace == 1, palette, scanlines)
    expected = sum(rows * (1 + row_bytes) for rows, row_bytes in png_passes(image))
    if len(scanlines) != expected:
        raise ImageFormatError(f"PNG image data has {len(scanlines)} bytes, expected {expected}")
    return image


def png_passes(image: PngImage) -> list[tuple[int, int]]:
    """(rows, bytes per row without the filter byte) of each non-empty pass (one unless Adam7)."""
    bits_per_pixel = PNG_CHANNELS[image.color_type] * image.bit_depth
    passes = ADAM7_PASSES if image.interlaced else ((0, 0, 1, 1),)
    layout = []
    for x0, y0, dx, dy in passes:
        columns = max(0, -(-(image.width - x0) // dx))
        rows = max(0, -(-(image.height - y0) // dy))
        if columns and rows:
            layout.append((rows, -(-(columns * bits_per_pixel) // 8)))
    return layout


def png_is_gray(image: PngImage) -> bool:
    """R = G = B in every pixel.

    Checked on the filtered rows without unfiltering them: every PNG filter predicts a byte from
    the same byte of the left, upper and upper-left pixels, so by induction over the pixels the
    raw R, G and B samples are equal everywhere exactly when the filtered R, G, B bytes are.
    """
    if image.color_type in (0, 4):  # gray, gray + alpha
        return True
    if image.color_type == 3:  # palette: every entry gray (entries that are unused are not told apart)
        palette = image.palette or b""
        return palette[0::3] == palette[1::3] == palette[2::3]
    sample_bytes = image.bit_depth // 8
    pixel_bytes = PNG_CHANNELS[image.color_type] * sample_bytes
    position = 0
    for rows, row_bytes in png_passes(image):
        for _ in range(rows):
            row = image.scanlines[position + 1:position + 1 + row_bytes]
            position += 1 + row_bytes
            for byte in range(sample_bytes):
                red = row[byte::pixel_bytes]
                if red != row[byte + sample_bytes::pixel_bytes] or red != row[byte + 2 * sample_bytes::pixel_bytes]:
                    return False
    return True


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png_rgb(width: int, height: int, scanlines: bytes, level: int = 6) -> bytes:
    """An 8-bit RGB PNG from rows that each start with their filter-type byte."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(scanlines, level)) + png_chunk(b"IEND", b"")


# --------------------------------------------------------------------------------------------
# Chains of operations: -operations, and the size and format a chain makes
# --------------------------------------------------------------------------------------------

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
BOOLEANS = {"true": True, "false": False}
# operations that keep the size (the others are known to chain_geometry)
SAME_SIZE_OPERATIONS = frozenset({"grayscale", "blur", "sharpen", "auto_orient", "flip", "flop", "format"})
# after a grayscale step, operations that treat every channel alike (move, scale, crop, blur, encode), so
# that R = G = B stays exact; sharpen works on lightness in another colour space and may not keep it
GRAY_KEEPING_OPERATIONS = frozenset({"grayscale", "blur", "resize", "thumbnail", "crop", "rotate", "auto_orient",
                                     "flip", "flop", "format"})


@dataclass(frozen=True)
class StepSpec:
    """One step of -operations as written: its operation and its parameters as text."""
    position: int  # from 1
    op: str
    params: tuple[tuple[str, str], ...]

    @property
    def where(self) -> str:
        return f"step {self.position} ({self.op})"


def parse_operations_spec(text: str) -> list[StepSpec]:
    """Reads -operations: steps separated by ",", each an operation's name, then its parameters
    after ":" as name=value. Only the syntax: the names and values are checked against GET /operations
    (typed_chain). Raises argparse.ArgumentTypeError, so that a malformed spec is a usage error."""
    def malformed(message: str) -> argparse.ArgumentTypeError:
        return argparse.ArgumentTypeError(f"{message}: write steps separated by \",\" and parameters after \":\" as "
                                          f"name=value, e.g. {OPERATIONS_EXAMPLE}")

    if not text.strip():
        raise malformed("empty chain")
    steps = []
    for position, raw in enumerate(text.split(","), 1):
        op, *params = (part.strip() for part in raw.split(":"))
        if not op:
            raise malformed(f"step {position} has no operation name")
        if not NAME_PATTERN.fullmatch(op):
            raise malformed(f'step {position}: "{shorten(op, 40)}" is not an operation name')
        pairs: list[tuple[str, str]] = []
        for param in params:
            name, equals, value = (piece.strip() for piece in param.partition("="))
            if not equals or not NAME_PATTERN.fullmatch(name) or not value:
                raise malformed(f'step {position} ({op}): "{shorten(param, 40)}" is not name=value')
            if any(name == seen for seen, _ in pairs):
                raise malformed(f'step {position} ({op}): "{name}" is given twice')
            pairs.append((name, value))
        steps.append(StepSpec(position, op, tuple(pairs)))
    return steps


def typed_value(step: StepSpec, param: dict, text: str) -> object:
    """A parameter's text as the JSON value its declared type calls for (GET /operations), in its range."""
    name, kind = param.get("name"), param.get("type")
    low, high = param.get("minimum"), param.get("maximum")
    span = f" from {low} to {high}" if low is not None and high is not None else ""
    value: int | float
    if kind in ("integer", "number"):
        wanted = f'"{name}" must be a {"whole " if kind == "integer" else ""}number{span}'
        try:
            value = int(text) if kind == "integer" and WHOLE_NUMBER.fullmatch(text) else float(text)
        except ValueError:
            value = math.nan
        if (kind == "integer" and not isinstance(value, int)) or not math.isfinite(value):
            raise UsageError(f'-operations: {step.where}: {wanted}, not "{text}"')
        if (low is not None and value < low) or (high is not None and value > high):
            raise UsageError(f"-operations: {step.where}: {wanted}, not {text}")
        return value
    if kind == "boolean":
        if text.lower() not in BOOLEANS:
            raise UsageError(f'-operations: {step.where}: "{name}" must be true or false, not "{text}"')
        return BOOLEANS[text.lower()]
    if kind == "enum":
        allowed = list(param.get("values") or [])
        match = next((choice for choice in allowed if str(choice) == text), None)
        if match is None:
            raise UsageError(f'-operations: {step.where}: "{name}" must be one of '
                             f'{", ".join(str(choice) for choice in allowed)}, not "{text}"')
        return match
    return text  # a type this script does not know: the server checks it


def typed_chain(steps: Sequence[StepSpec], catalogue: dict) -> list[dict]:
    """The steps as the JSON chain POST /workloads takes, each parameter typed as GET /operations
    declares it; an operation or a parameter the server does not have, a value of the wrong type or
    out of range, a required parameter missing, or a last-only step (format) before the end is a
    UsageError. What the server checks beyond that (a resize with neither side) comes back as 422."""
    listed = catalogue.get("operations")
    if not isinstance(listed, list):
        raise StressTestError(f"GET /operations: no list of operations in {catalogue!r:.120}")
    operations = {entry.get("op"): entry for entry in listed if isinstance(entry, dict)}
    most = catalogue.get("max_steps")
    if isinstance(most, int) and len(steps) > most:
        raise UsageError(f"-operations: {len(steps)} steps, and the server takes at most {most}")
    chain = []
    for step in steps:
        entry = operations.get(step.op)
        if entry is None:
            raise UsageError(f'-operations: step {step.position}: unknown operation "{step.op}": the server has '
                             f'{", ".join(str(name) for name in operations)}')
        params = {param.get("name"): param for param in entry.get("params") or [] if isinstance(param, dict)}
        typed: dict = {"op": step.op}
        for name, text in step.params:
            param = params.get(name)
            if param is None:
                takes = ", ".join(f'"{known}"' for known in params) if params else "none"
                raise UsageError(f'-operations: {step.where}: unknown parameter "{name}": it takes {takes}')
            typed[name] = typed_value(step, param, text)
        missing = [name for name, param in params.items() if param.get("required") and name not in typed]
        if missing:
            raise UsageError(f'-operations: {step.where}: "{missing[0]}" is required, e.g. {step.op}:{missing[0]}=...')
        if entry.get("last_only") and step.position != len(steps):
            raise UsageError(f'-operations: {step.where}: "{step.op}" may only be the last step')
        chain.append(typed)
    return chain


def chain_spec(chain: Sequence[dict]) -> str:
    """A chain written as -operations takes it (parameters that are null left out)."""
    def text(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)

    return ",".join(":".join([str(step.get("op"))] + [f"{name}={text(value)}" for name, value in step.items()
                                                       if name != "op" and value is not None])
                    for step in chain)


def workload_chain(view: dict) -> list[dict]:
    """The chain a workload view says its images go through: its operations (every default filled in),
    or, from a server that lists none, its course filter as the one step it is."""
    operations = view.get("operations")
    if isinstance(operations, list) and all(isinstance(step, dict) for step in operations):
        return operations
    return [{"op": view.get("filter") or DEFAULT_FILTER}]


def describe_processing(view: dict) -> str:
    """What a workload does to its images, for the log and the report: its filter, or its chain."""
    if view.get("filter"):
        return f"filter {view.get('filter')}"
    return f"operations {chain_spec(workload_chain(view))}"


def js_round(value: float) -> int:
    """Math.round of a value of 0 or more: the nearest whole number, halves up."""
    floor = math.floor(value)
    return floor + 1 if value - floor >= 0.5 else floor


def round_half_even(value: float) -> int:
    floor = math.floor(value)
    if value - floor != 0.5:
        return js_round(value)
    return floor if floor % 2 == 0 else floor + 1


def resized_size(size: tuple[int, int], width: int | None, height: int | None, fit: str, enlarge: bool) -> tuple[int, int]:
    """The size a resize makes: resizedSize of common/operations/definitions.ts, step for step (sharp's
    ResolveShrink, then libvips rounding to the nearest pixel, halves up; a side not given, halves to even)."""
    in_width, in_height = size
    hshrink: float = 1
    vshrink: float = 1
    if width is not None and height is not None:
        hshrink = in_width / width
        vshrink = in_height / height
        if fit in ("cover", "outside"):
            hshrink = vshrink = min(hshrink, vshrink)
        elif fit in ("contain", "inside"):
            hshrink = vshrink = max(hshrink, vshrink)
    elif width is not None:
        hshrink = in_width / width
        if fit != "fill":
            vshrink = hshrink
    elif height is not None:
        vshrink = in_height / height
        if fit != "fill":
            hshrink = vshrink
    if not enlarge:
        hshrink = max(1, hshrink)
        vshrink = max(1, vshrink)
    hshrink = min(hshrink, in_width)
    vshrink = min(vshrink, in_height)
    resized = (max(1, math.floor(in_width / hshrink + 0.5)), max(1, math.floor(in_height / vshrink + 0.5)))
    target = (width if width is not None else max(1, round_half_even(in_width / hshrink)),
              height if height is not None else max(1, round_half_even(in_height / vshrink)))
    if fit == "contain":
        return target
    if fit == "cover":
        return min(target[0], resized[0]), min(target[1], resized[1])
    return resized


def chain_geometry(chain: Sequence[dict], size: tuple[int, int]) -> tuple[int, int] | str:
    """The size of the chain's result for an image of `size`, or why it cannot be told: the first step
    that cannot apply (a crop outside the image), or an operation this script does not know."""
    width, height = size
    for position, step in enumerate(chain, 1):
        op = step.get("op")
        if op == "resize":
            width, height = resized_size((width, height), step.get("width"), step.get("height"),
                                         step.get("fit") or "cover", bool(step.get("enlarge")))
        elif op == "thumbnail":
            side = int(step.get("size") or 256)
            width, height = resized_size((width, height), side, side, "inside", False)
        elif op == "crop":
            left, top, crop_width, crop_height = (int(step.get(key) or 0) for key in ("left", "top", "width", "height"))
            if left + crop_width > width or top + crop_height > height:
                return (f"step {position} (crop): the rectangle {crop_width}x{crop_height} at ({left}, {top}) does not "
                        f"lie inside the {width}x{height} image")
            width, height = crop_width, crop_height
        elif op == "rotate":
            if step.get("angle") in (90, 270):
                width, height = height, width
        elif op not in SAME_SIZE_OPERATIONS:
            return f'step {position}: the size "{op}" makes is not known to this script'
    return width, height


def chain_output_format(chain: Sequence[dict], input_format: str) -> str:
    """The format step's type when the chain ends with one, else the input's format."""
    last = chain[-1] if chain else {}
    return str(last.get("type")) if last.get("op") == "format" else input_format


def expected_result(chain: Sequence[dict], original: ImageInfo) -> ImageInfo | None:
    """The format and size of the result the chain makes of an original; None when they cannot be told."""
    size = chain_geometry(chain, (original.width, original.height))
    if isinstance(size, str):
        return None
    return ImageInfo(chain_output_format(chain, original.format), *size)


def chain_makes_gray(chain: Sequence[dict]) -> bool:
    """Whether every pixel of the chain's results has R = G = B: a grayscale step, then only steps
    that treat every channel alike."""
    gray = False
    for step in chain:
        op = step.get("op")
        gray = op == "grayscale" or (gray and op in GRAY_KEEPING_OPERATIONS)
    return gray


# --------------------------------------------------------------------------------------------
# Test frames
# --------------------------------------------------------------------------------------------


def bounce(step: int, span: int) -> int:
    """A position moving back and forth over 0..span."""
    if span <= 0:
        return 0
    phase = step % (2 * span)
    return phase if phase <= span else 2 * span - phase


class FrameGenerator:
    """Colourful, detailed RGB frames: moving gradients, diagonal stripes, a sine wave pattern and a
    bouncing checkerboard box. Rows are assembled from precomputed byte strings with slicing and
    bytes.translate (C speed), never pixel by pixel."""

    STRIPE_PERIOD = 48

    def __init__(self, width: int, height: int):
        self.width = width
        self.height = height
        # _shift[k] adds k (mod 256) to every byte it translates
        self._shift = [bytes((value + k) & 0xFF for value in range(256)) for k in range(256)]
        self._gradient = bytes(x * 255 // max(width - 1, 1) for x in range(width))
        period = self.STRIPE_PERIOD
        self._stripes = bytes(abs((x % period) - period // 2) * 255 // (period // 2) for x in range(width + period))
        self._wave_period = max(width // 3, 8)
        self._wave = bytes(int(127.5 + 127.4 * math.sin(2 * math.pi * x / self._wave_period)) for x in range(width + self._wave_period))
        self._box_width = max(width // 5, 1)
        self._box_height = max(height // 5, 1)
        self._cell = max(2, min(width, height) // 60)
        light, dark = b"\xff\xf0\x40", b"\x10\x20\x90"
        self._box_rows = tuple(
            b"".join(light if ((x // self._cell) + parity) % 2 == 0 else dark for x in range(self._box_width))
            for parity in (0, 1)
        )

    def scanlines(self, index: int) -> bytes:
        width, height, shift = self.width, self.height, self._shift
        box_x = bounce(index * 7, width - self._box_width)
        box_y = bounce(index * 5, height - self._box_height)
        box_start, box_end = 3 * box_x, 3 * (box_x + self._box_width)
        parts: list[bytes] = []
        for y in range(height):
            row = bytearray(3 * width)
            row[0::3] = self._gradient.translate(shift[(index * 4 + y // 6) & 0xFF])
            stripe = (y + index * 3) % self.STRIPE_PERIOD
            row[1::3] = self._stripes[stripe:stripe + width].translate(shift[(y * 128 // height) & 0xFF])
            wave = (index * 5 + y * y // height) % self._wave_period
            row[2::3] = self._wave[wave:wave + width].translate(shift[(index * 9) & 0xFF])
            if box_y <= y < box_y + self._box_height:
                row[box_start:box_end] = self._box_rows[((y - box_y) // self._cell) % 2]
            parts.append(b"\x00")
            parts.append(bytes(row))
        return b"".join(parts)

    def png(self, index: int) -> bytes:
        return encode_png_rgb(self.width, self.height, self.scanlines(index))


def generate_frames(directory: Path, count: int, size: tuple[int, int], out: TextIO) -> list[Path]:
    """Writes 0.png .. count-1.png into directory (zlib releases the GIL, so threads help)."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = FrameGenerator(*size)
    written = AtomicCounter()
    paths = [directory / f"{index}.png" for index in range(count)]

    def write(index: int) -> None:
        paths[index].write_bytes(generator.png(index))
        written.add()

    started = time.monotonic()
    progress = ProgressDisplay(out, lambda: f"generating {progress_bar(written.value, count)} {written.value}/{count} frames")
    with progress, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(count)))
    log(f"wrote {count} frames of {size[0]}x{size[1]} to {directory} in {time.monotonic() - started:.1f} s")
    return paths


def list_frames(directory: Path, extension: str, limit: int | None = None) -> list[Path]:
    """{directory}/0.ext, 1.ext, ... up to the first missing index (or limit)."""
    frames = []
    while limit is None or len(frames) < limit:
        path = directory / f"{len(frames)}.{extension}"
        if not path.is_file():
            break
        frames.append(path)
    return frames


# --------------------------------------------------------------------------------------------
# Small thread-safe helpers: counters, problem tally, progress display
# --------------------------------------------------------------------------------------------


class AtomicCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, amount: int = 1) -> None:
        with self._lock:
            self._value += amount

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str


class ProblemTally:
    """Problems counted by kind, keeping the first message of each kind as an example."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._examples: dict[str, str] = {}

    def add(self, problem: Problem) -> None:
        with self._lock:
            self._counts[problem.kind] += 1
            self._examples.setdefault(problem.kind, problem.message)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def lines(self) -> list[str]:
        with self._lock:
            return [f"{count:6d}  {kind}: e.g. {shorten(self._examples[kind])}" for kind, count in self._counts.most_common()]


def shorten(text: str, limit: int = MAX_EXAMPLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def progress_bar(done: int, total: int, width: int = PROGRESS_BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


class ProgressDisplay:
    """Shows render() on a stream until stopped: refreshed in place with \\r on a terminal,
    otherwise as a line every few seconds. Use as a context manager."""

    def __init__(self, stream: TextIO, render: Callable[[], str]):
        self._stream = stream
        self._render = render
        self._tty = stream.isatty()
        self._interval = PROGRESS_TTY_INTERVAL_S if self._tty else PROGRESS_LOG_INTERVAL_S
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> "ProgressDisplay":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._show(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._show(final=False)

    def _show(self, final: bool) -> None:
        line = f"{self._render()}  {time.monotonic() - self._started:5.1f}s"
        if self._tty:
            self._stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Uploading, watching, downloading
# --------------------------------------------------------------------------------------------


@dataclass
class FrameUpload:
    index: int
    path: Path
    size: int = 0
    info: ImageInfo | None = None  # from the local file's header; None if unreadable
    image_id: str | None = None
    started: float = 0.0
    finished: float = 0.0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.image_id is not None


class UploadFailed(Exception):
    """One upload that did not make an original: the kind of problem and what to say of it."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class FrameUploader:
    """Uploads frames as originals of one workload, `concurrency` at a time, in frame order: each
    through POST /images, or through an upload slot when the route says so."""

    def __init__(self, client: ApiClient, workload_id: str, content_type: str, concurrency: int,
                 route: UploadRoute = UploadRoute(False, "-upload-via api")):
        self.client = client
        self.workload_id = workload_id
        self.content_type = content_type
        self.concurrency = concurrency
        self.route = route
        self.store = ObjectStoreClient() if route.slots else None
        self.succeeded = AtomicCounter()
        self.failed = AtomicCounter()

    @property
    def store_throttled(self) -> int:
        return self.store.throttled if self.store else 0

    def upload_all(self, frames: Sequence[Path], on_result: Callable[[FrameUpload], None] | None = None) -> list[FrameUpload]:
        def report(result: FrameUpload) -> None:
            (self.succeeded if result.ok else self.failed).add()
            if on_result:
                on_result(result)

        def group_task(indices: range) -> list[FrameUpload]:
            if self.store:
                results = self.upload_group([(index, frames[index]) for index in indices])
            else:
                results = [self.upload(index, frames[index]) for index in indices]
            for result in results:
                report(result)
            return results

        # through the API one frame a request; through slots a group of frames a request
        groups = slot_groups(len(frames), self.concurrency) if self.store else [range(index, index + 1) for index in range(len(frames))]
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="upload")
        try:
            return [result for results in pool.map(group_task, groups) for result in results]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if self.store:
                self.store.close()

    def read_frame(self, index: int, path: Path) -> tuple[FrameUpload, bytes | None]:
        """The frame's upload record and its bytes (None, with the problem recorded, if unreadable)."""
        result = FrameUpload(index, path)
        try:
            data = path.read_bytes()
        except OSError as error:
            result.problem = Problem("frame unreadable", f"{path}: {error}")
            return result, None
        result.size = len(data)
        try:
            result.info = read_image_info(data)
        except ImageFormatError:
            result.info = None  # upload it anyway: the server's answer is what is being tested
        return result, data

    def upload(self, index: int, path: Path) -> FrameUpload:
        """One frame through POST /images (through slots, frames go a group at a time: upload_group)."""
        result, data = self.read_frame(index, path)
        if data is not None:
            result.started = time.monotonic()
            self.settle(result, lambda: self.client.upload_original(self.workload_id, path.name, data, self.content_type))
        return result

    def settle(self, result: FrameUpload, send: Callable[[], dict]) -> None:
        """Runs the frame's upload and records what came of it: its image id, or its problem."""
        name = result.path.name
        try:
            answer = send()
            image_id = answer.get("image_id") if isinstance(answer, dict) else None
            if isinstance(image_id, str) and image_id:
                result.image_id = image_id
            else:
                result.problem = Problem("upload answer without image_id", f"{name}: {answer!r}")
        except UploadFailed as failure:
            result.problem = Problem(failure.kind, f"{name}: {failure.detail}")
        except ApiError as error:
            result.problem = Problem(f"upload HTTP {error.status}", f"{name}: {error.message}")
        except (ApiUnreachable, StressTestError) as error:
            result.problem = Problem("upload no answer", f"{name}: {error}")
        result.finished = time.monotonic()

    def slot_type(self, info: ImageInfo | None) -> str:
        """The type a frame's slot is asked for: the frame's own, as its header says."""
        sniffed = MIME_OF_FORMAT.get(info.format) if info else None
        return sniffed if sniffed in SLOT_TYPES else self.content_type

    def upload_group(self, items: Sequence[tuple[int, Path]]) -> list[FrameUpload]:
        """Frames through slots, a group at a time: one POST /uploads opens their slots, each frame is PUT
        to its own, one POST /uploads/confirm confirms those put. A group whose slots or confirm the server
        does not answer whole (one frame too large, the quota, no answer) goes one frame a request instead,
        so that every frame gets the answer it would get alone."""
        results: list[FrameUpload] = []
        ready: list[tuple[FrameUpload, bytes]] = []
        for index, path in items:
            result, data = self.read_frame(index, path)
            results.append(result)
            if data is not None:
                ready.append((result, data))
        started = time.monotonic()
        for result, _ in ready:
            result.started = started
        try:
            slots = self.client.open_upload_slots(self.workload_id, [(self.slot_type(result.info), len(data)) for result, data in ready]) \
                if len(ready) > 1 else None
        except StressTestError:
            slots = None
        if slots is None:
            for result, data in ready:
                self.settle(result, lambda result=result, data=data: self.upload_through_slot(result.path.name, data, result.info))
            return results
        put: list[tuple[FrameUpload, str]] = []
        for (result, data), slot in zip(ready, slots):
            try:
                put.append((result, self.put_at_slot(slot, data)))
            except UploadFailed as failure:
                result.problem = Problem(failure.kind, f"{result.path.name}: {failure.detail}")
                result.finished = time.monotonic()
        if not put:
            return results
        try:
            answers = self.client.confirm_uploads([image_id for _, image_id in put])
        except StressTestError:
            for result, image_id in put:
                self.settle(result, lambda image_id=image_id: self.confirm_one(image_id))
            return results
        for (result, image_id), answer in zip(put, answers):
            status = answer.get("status")
            if status == 201:
                self.settle(result, lambda answer=answer: answer)
                continue
            error = answer.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            result.problem = Problem(f"upload confirm HTTP {status}", f"{result.path.name}: image {image_id}: {message or answer!r}")
            result.finished = time.monotonic()
        return results

    def put_at_slot(self, slot: dict, data: bytes) -> str:
        """PUTs the bytes at the slot's presigned URL, with exactly the headers it names; its image id."""
        assert self.store is not None
        image_id, upload = slot.get("image_id"), slot.get("upload")
        if not isinstance(image_id, str) or not image_id or not isinstance(upload, dict):
            raise UploadFailed("upload slot without image_id or upload", f"POST /uploads answered {shorten(repr(sorted(slot)))}")
        url, headers = upload.get("url"), upload.get("headers", {})
        if upload.get("method", "PUT") != "PUT" or not isinstance(url, str) or not isinstance(headers, dict) or \
                not all(isinstance(name, str) and isinstance(value, str) for name, value in headers.items()):
            raise UploadFailed("upload slot unusable", f"image {image_id}: its upload is not a PUT to a URL with string headers")
        try:
            self.store.put(url, headers, data)
        except ObjectStoreError as error:
            kind = f"upload PUT HTTP {error.status}" if error.status else "upload PUT no answer"
            raise UploadFailed(kind, f"image {image_id}: {error.message}") from None
        return image_id

    def confirm_one(self, image_id: str) -> dict:
        """POST /uploads/{id}/confirm: its answer (as POST /images answers)."""
        try:
            return self.client.confirm_upload(image_id)
        except ApiError as error:
            raise UploadFailed(f"upload confirm HTTP {error.status}", f"image {image_id}: {error.message}") from None
        except (ApiUnreachable, StressTestError) as error:
            raise UploadFailed("upload confirm no answer", f"image {image_id}: {error}") from None

    def upload_through_slot(self, filename: str, data: bytes, info: ImageInfo | None) -> dict:
        """POST /uploads, the PUT of the bytes to the slot's URL, then the confirm: the confirm's answer
        (as POST /images answers). The slot's type is the frame's own, as its header says."""
        slot = self.client.open_upload_slot(self.workload_id, self.slot_type(info), len(data))
        return self.confirm_one(self.put_at_slot(slot, data))


def slot_groups(count: int, concurrency: int) -> list[range]:
    """Frames 0..count-1 in groups of consecutive frames for slots: up to SLOTS_PER_REQUEST a group, fewer
    when that leaves a lane of the concurrency idle."""
    size = max(1, min(SLOTS_PER_REQUEST, math.ceil(count / max(1, concurrency))))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


@dataclass(frozen=True)
class WorkloadSnapshot:
    view: dict
    received: float  # monotonic time the answer arrived

    @property
    def finished(self) -> int:
        view = self.view
        return int(view.get("done_jobs", 0)) + int(view.get("failed_jobs", 0)) + int(view.get("cancelled_jobs", 0))

    @property
    def total(self) -> int:
        return int(self.view.get("total_images", 0))

    @property
    def cancelled(self) -> bool:
        return self.view.get("status") == "cancelled"

    def completed_with(self, uploaded: int) -> bool:
        return self.view.get("status") == "completed" and self.total >= uploaded and self.finished >= self.total


class WorkloadWatcher:
    """Polls GET /workloads/{id} on a thread and records when each filtered image id first appears."""

    def __init__(self, client: ApiClient, workload_id: str, interval: float):
        self._client = client
        self._workload_id = workload_id
        self._interval = interval
        self._lock = threading.Lock()
        self._first_seen: dict[str, float] = {}
        self._latest: WorkloadSnapshot | None = None
        self._fatal: StressTestError | None = None
        self._poll_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)

    def __enter__(self) -> "WorkloadWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except ApiError as error:
                if error.status < 500 and error.status != 429:  # 401, 404: polling again will not help
                    with self._lock:
                        self._fatal = error
                    return
                self._count_poll_error()
            except StressTestError:
                self._count_poll_error()
            if self._stop.wait(self._interval):
                return

    def _count_poll_error(self) -> None:
        with self._lock:
            self._poll_errors += 1

    def poll(self) -> WorkloadSnapshot:
        view = self._client.workload(self._workload_id)
        snapshot = WorkloadSnapshot(view, time.monotonic())
        with self._lock:
            for image_id in view.get("filtered_images", []):
                self._first_seen.setdefault(image_id, snapshot.received)
            self._latest = snapshot
        return snapshot

    @property
    def latest(self) -> WorkloadSnapshot | None:
        with self._lock:
            return self._latest

    @property
    def first_seen(self) -> dict[str, float]:
        with self._lock:
            return dict(self._first_seen)

    @property
    def poll_errors(self) -> int:
        with self._lock:
            return self._poll_errors

    def wait_until_ended(self, uploaded: int, deadline: float) -> WorkloadSnapshot | None:
        """The first snapshot showing every uploaded image finished, or the workload cancelled (by its
        owner, elsewhere: then nothing more will finish), or None at the deadline."""
        while time.monotonic() < deadline:
            with self._lock:
                fatal, latest = self._fatal, self._latest
            if fatal:
                raise fatal
            if latest and (latest.cancelled or latest.completed_with(uploaded)):
                return latest
            time.sleep(0.02)
        return None


@dataclass
class FilteredDownload:
    position: int  # in filtered_images
    image_id: str
    info: ImageInfo | None = None
    problems: list[Problem] = field(default_factory=list)
    size: int = 0
    fetched: bool = False  # the server sent the image


def format_of_content_type(content_type: str) -> str | None:
    return {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp",
            "image/avif": "avif"}.get(content_type)


def check_filtered(data: bytes, content_type: str, grayscale: bool) -> tuple[ImageInfo | None, list[Problem]]:
    """The image's format and size, and what is wrong with it as a filtered result."""
    kind = sniff_format(data)
    if kind is None:
        return None, [Problem("verify: not a PNG, JPEG, WebP or AVIF", f"{len(data)} bytes starting {data[:8]!r}")]
    problems = []
    if format_of_content_type(content_type) != kind:
        problems.append(Problem("verify: Content-Type does not match the data", f"Content-Type {content_type!r}, data {kind}"))
    try:
        if kind == "png":
            image = parse_png(data)
            info = ImageInfo("png", image.width, image.height)
            if grayscale and not png_is_gray(image):
                problems.append(Problem("verify: grayscale result has colour", f"{info.shape}, colour type {image.color_type}"))
        elif kind == "jpeg":
            info = read_image_info(data)
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                problems.append(Problem("verify: truncated JPEG", "no EOI marker at the end"))
        elif kind == "webp":
            info = read_image_info(data)
            (riff_size,) = struct.unpack("<I", data[4:8])
            if riff_size + 8 != len(data):
                problems.append(Problem("verify: truncated WebP", f"RIFF length {riff_size + 8}, {len(data)} bytes came"))
        else:
            info = read_image_info(data)
            # the boxes must fill the file exactly, and hold the coded image
            if not any(box == b"mdat" for box, _, _ in iso_boxes(data, 0, len(data))):
                problems.append(Problem("verify: AVIF without image data", "no mdat box"))
    except ImageFormatError as error:
        return None, problems + [Problem(f"verify: corrupt {kind.upper()}", str(error))]
    return info, problems


class ResultDownloader:
    """Downloads filtered images `concurrency` at a time, checks each, optionally saves them."""

    def __init__(self, client: ApiClient, concurrency: int, grayscale: bool, output: Path | None, extension_for: Callable[[str], str]):
        self.client = client
        self.concurrency = concurrency
        self.grayscale = grayscale
        self.output = output
        self.extension_for = extension_for
        self.done = AtomicCounter()
        self.wrong = AtomicCounter()

    def download_all(self, image_ids: Sequence[str]) -> list[FilteredDownload]:
        if self.output:
            self.output.mkdir(parents=True, exist_ok=True)

        def task(position: int) -> FilteredDownload:
            result = self.download(position, image_ids[position])
            self.done.add()
            if result.problems:
                self.wrong.add()
            return result

        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="download")
        try:
            return list(pool.map(task, range(len(image_ids))))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def download(self, position: int, image_id: str) -> FilteredDownload:
        result = FilteredDownload(position, image_id)
        try:
            response = self.client.download_image(image_id)
        except ApiError as error:
            result.problems.append(Problem(f"download HTTP {error.status}", f"{image_id}: {error.message}"))
            return result
        except StressTestError as error:
            result.problems.append(Problem("download no answer", str(error)))
            return result
        result.fetched = True
        result.size = len(response.body)
        result.info, result.problems = check_filtered(response.body, response.content_type, self.grayscale)
        if self.output:
            kind = result.info.format if result.info else sniff_format(response.body) or "png"
            (self.output / f"{position}.{self.extension_for(kind)}").write_bytes(response.body)
        return result


# --------------------------------------------------------------------------------------------
# Statistics and the report
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * percent / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def latency_line(label: str, seconds: Sequence[float]) -> str:
    if not seconds:
        return f"  {label:<22} no samples"
    values = sorted(seconds)
    cells = [("min", values[0]), ("p50", percentile(values, 50)), ("p95", percentile(values, 95)),
             ("p99", percentile(values, 99)), ("max", values[-1])]
    return f"  {label:<22} " + "  ".join(f"{name} {value * 1000:7.0f} ms" for name, value in cells) + f"   (n={len(values)})"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f} images/s" if seconds > 0 else "       - images/s"


def match_results(uploads: Sequence[FrameUpload], view: dict) -> list[tuple[FrameUpload, str]]:
    """Pairs each filtered image with its original: filtered_images follows the upload order of the
    originals that are done, i.e. the uploaded originals minus those under `failures`. The server's
    upload order is taken to be the order in which the upload answers arrived."""
    failed = {failure.get("image_id") for failure in view.get("failures", [])}
    done = sorted((upload for upload in uploads if upload.ok and upload.image_id not in failed), key=lambda upload: upload.finished)
    return list(zip(done, view.get("filtered_images", [])))


def match_results_exactly(client: ApiClient, workload_id: str, uploads: Sequence[FrameUpload], view: dict) -> list[tuple[FrameUpload, str]] | None:
    """Pairs each filtered image with its original by the original's id, from GET /images?workload_id=
    (each filtered image names its source). None when the server has no such listing (a course
    server), or when it does not account for every filtered image of the workload view."""
    try:
        listing = client.workload_images(workload_id)
    except (ApiError, StressTestError):
        return None
    images = listing.get("images")
    if not isinstance(images, list):
        return None
    by_id = {upload.image_id: upload for upload in uploads if upload.ok}
    source_of = {image.get("image_id"): image.get("source_image_id") for image in images
                 if isinstance(image, dict) and image.get("type") == "filtered"}
    pairs = []
    for image_id in view.get("filtered_images", []):
        upload = by_id.get(source_of.get(image_id))
        if upload is None:
            return None
        pairs.append((upload, image_id))
    return pairs


def failure_kind(error: str) -> str:
    """Groups job errors by their text before the first ':' ("could not decode image: ...")."""
    return "job failed: " + shorten(error.split(":")[0], 60)


def check_shapes(pairs: Sequence[tuple[FrameUpload, FilteredDownload]], exact_pairing: bool,
                 chain: Sequence[dict]) -> list[tuple[str | None, Problem]]:
    """(filtered image id or None, problem) for results without the format and size the chain makes of
    their original. When the pairing may swap neighbours (parallel uploads of frames of several
    shapes), the shapes are compared as multisets and the wrong results cannot be named."""
    checked = [(upload.info, expected, download) for upload, download in pairs if upload.info and download.info
               for expected in [expected_result(chain, upload.info)] if expected]
    kind = "verify: format or size not what the chain makes"
    if exact_pairing or len({original.shape for original, _, _ in checked}) <= 1:
        return [(download.image_id, Problem(kind, f"original {original.shape}, expected {expected.shape}, "
                                                  f"result {download.info.shape}"))
                for original, expected, download in checked if expected.shape != download.info.shape]
    expected = Counter(expected.shape for _, expected, _ in checked)
    results = Counter(download.info.shape for _, _, download in checked)
    problem = Problem(kind, f"expected {dict(expected)}, results {dict(results)}")
    return [(None, problem)] * sum((expected - results).values())


def expected_summary(chain: Sequence[dict], uploads: Sequence[FrameUpload]) -> str:
    """The results the chain should make of the uploaded frames, by format and size."""
    shapes: Counter[str] = Counter()
    unknown = 0
    for upload in uploads:
        expected = expected_result(chain, upload.info) if upload.info else None
        if expected:
            shapes[expected.shape] += 1
        else:
            unknown += 1
    parts = [f"{count} x {shape}" for shape, count in shapes.most_common()]
    if unknown:
        parts.append(f"{unknown} not predicted")
    return ", ".join(parts) or "nothing uploaded"


@dataclass
class RunReport:
    api: str
    workload: dict
    workers: str
    frames_source: str
    frame_count: int
    concurrency: int
    uploads_via: str
    uploaded: int
    upload_bytes: int
    upload_seconds: float
    upload_latencies: list[float]
    done: int
    failed_jobs: int
    cancelled_jobs: int
    end_to_end_seconds: float | None
    result_latencies: list[float]
    poll_interval: float
    approximate_pairing: bool
    downloaded: int
    download_seconds: float
    verified_ok: int
    throttled: int
    poll_errors: int
    problems: ProblemTally
    expected: str = ""
    cleanup: str = ""

    @property
    def passed(self) -> bool:
        return self.problems.total == 0 and self.done == self.frame_count

    def text(self) -> str:
        workload = self.workload
        lines = [
            "",
            "DPIP stress test report",
            f"  server                 {self.api} ({self.workers})",
            f"  workload               {workload.get('workload_id')} ({workload.get('workload_name')}, {describe_processing(workload)})",
            f"  frames                 {self.frame_count} ({self.frames_source}), concurrency {self.concurrency}",
            f"  upload                 {self.uploaded}/{self.frame_count} in {self.upload_seconds:7.2f} s {rate(self.uploaded, self.upload_seconds)}"
            f"  {self.upload_bytes / 1e6 / self.upload_seconds if self.upload_seconds > 0 else 0:7.1f} MB/s",
            f"  uploads via            {self.uploads_via}",
        ]
        if self.end_to_end_seconds is None:
            cancelled = f", {self.cancelled_jobs} cancelled" if self.cancelled_jobs else ""
            lines.append(f"  end to end             not completed: {self.done} done, {self.failed_jobs} failed{cancelled}")
        else:
            lines.append(f"  end to end             {self.done} done, {self.failed_jobs} failed in {self.end_to_end_seconds:7.2f} s"
                         f" {rate(self.done, self.end_to_end_seconds)}")
        lines.append(f"  download               {self.downloaded} in {self.download_seconds:7.2f} s {rate(self.downloaded, self.download_seconds)}")
        lines.append(f"  verified               {self.verified_ok}/{self.frame_count} correct")
        if self.expected:
            lines.append(f"  expected results       {self.expected}")
        lines.append(latency_line("upload latency", self.upload_latencies))
        lines.append(latency_line("result latency", self.result_latencies))
        lines.append(f"                         (upload answer -> listed in filtered_images, polled every {self.poll_interval:g} s)")
        if self.end_to_end_seconds is None:
            lines.append("                         (results of an unfinished workload are not matched to originals)")
        elif self.approximate_pairing:
            lines.append("                         (paired in upload answer order: parallel uploads may swap neighbours)")
        if self.throttled or self.poll_errors:
            lines.append(f"  notes                  {self.throttled} requests throttled (429/503, or 500/503 from the object store) "
                         f"and retried; {self.poll_errors} failed polls")
        if self.cleanup:
            lines.append(f"  cleanup                {self.cleanup}")
        problem_lines = self.problems.lines()
        lines.append("  errors                 " + ("none" if not problem_lines else f"{self.problems.total}"))
        lines.extend("  " + line for line in problem_lines)
        lines.append(f"  result                 {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------------


def extension_for(image_type: str) -> Callable[[str], str]:
    """File extension for a downloaded image of a format: -image-type's spelling when it matches."""
    def choose(kind: str) -> str:
        if IMAGE_TYPES.get(image_type) == MIME_OF_FORMAT.get(kind):
            return image_type
        return EXTENSION_OF_FORMAT.get(kind, "bin")
    return choose


def frames_to_push(args: argparse.Namespace) -> list[Path]:
    directory = Path(args.frames_path or DEFAULT_FRAMES_PATH)
    if not directory.is_dir():
        raise StressTestError(f"frames path {directory} is not a directory")
    frames = list_frames(directory, args.image_type, args.count)
    if not frames:
        raise StressTestError(f"no frames in {directory}: expected 0.{args.image_type}, 1.{args.image_type}, ...")
    return frames


def create_workload(client: ApiClient, args: argparse.Namespace) -> dict:
    """The workload of a run or a push: of -filter, or of the chain of -operations, typed as GET /operations
    declares its parameters. A chain the server refuses (422) is a usage error, with the server's message."""
    if args.operations is None:
        return client.create_workload(args.filter, args.workload_name)
    try:
        catalogue = client.operations()
    except ApiError as error:
        raise StressTestError(f"{error} (this server lists no operations: use -filter)") from error
    chain = typed_chain(args.operations, catalogue)
    try:
        return client.create_workload(None, args.workload_name, chain)
    except ApiError as error:
        if error.status == 422:
            raise UsageError(f"-operations: the server refused the chain: {error.message}") from error
        raise


def action_generate(args: argparse.Namespace) -> int:
    if args.image_type != "png":
        raise UsageError("generate writes PNG frames only: use -image-type png")
    generate_frames(Path(args.frames_path or DEFAULT_FRAMES_PATH), args.count or DEFAULT_COUNT, args.size or DEFAULT_SIZE, sys.stderr)
    return EXIT_OK


def action_push(args: argparse.Namespace) -> int:
    frames = frames_to_push(args)
    client = ApiClient(args.api)
    try:
        authenticate(client, args)
        route = upload_route(args.upload_via, None if args.upload_via == "api" else server_status(client, args.upload_via))
        workload_id = args.workload_id
        if workload_id:
            client.workload(workload_id)  # checks the token and the workload before uploading
        else:
            workload = create_workload(client, args)
            workload_id = workload["workload_id"]
            log(f"created workload {workload_id} ({workload.get('workload_name')}, {describe_processing(workload)})")
        concurrency = args.concurrency or DEFAULT_PUSH_CONCURRENCY
        log(f"uploads via {route.text}")
        uploader = FrameUploader(client, workload_id, IMAGE_TYPES[args.image_type], concurrency, route)
        report_each = (lambda result: print(f"{result.path}: {result.image_id or result.problem.message}", flush=True)) if args.verbose else None
        render = lambda: f"pushing {progress_bar(uploader.succeeded.value + uploader.failed.value, len(frames))} " \
                         f"uploaded {uploader.succeeded.value}/{len(frames)}  failed {uploader.failed.value}"
        started = time.monotonic()
        with ProgressDisplay(sys.stderr, render):
            uploads = uploader.upload_all(frames, report_each)
        elapsed = time.monotonic() - started
    finally:
        client.close()
    tally = ProblemTally()
    for upload in uploads:
        if upload.problem:
            tally.add(upload.problem)
    ok = sum(upload.ok for upload in uploads)
    print(f"pushed {ok}/{len(frames)} frames from {frames[0].parent} to workload {workload_id} in {elapsed:.2f} s ({rate(ok, elapsed).strip()})")
    for line in tally.lines():
        print(line)
    return EXIT_OK if tally.total == 0 else EXIT_FAILED


def wait_for_workload(watcher: WorkloadWatcher, deadline: float) -> WorkloadSnapshot | None:
    """Waits, with a progress display, until the workload's images (however many) are all finished."""
    render = lambda: run_progress_text(None, watcher.latest.total if watcher.latest else 0, watcher.latest)
    with ProgressDisplay(sys.stderr, render):
        return watcher.wait_until_ended(0, deadline)


def action_pull(args: argparse.Namespace) -> int:
    if not args.workload_id:
        raise UsageError("pull needs -workload-id")
    output = Path(args.output_path) if args.output_path else Path(args.frames_path or DEFAULT_FRAMES_PATH) / "filtered"
    client = ApiClient(args.api)
    try:
        authenticate(client, args)
        view = client.workload(args.workload_id)
        if args.wait and view.get("status") != "completed":
            with WorkloadWatcher(client, args.workload_id, args.poll_interval) as watcher:
                snapshot = wait_for_workload(watcher, time.monotonic() + args.timeout)
            view = snapshot.view if snapshot else client.workload(args.workload_id)
        if view.get("status") != "completed":
            log(f"warning: workload is {view.get('status')}: pulling the {len(view.get('filtered_images', []))} results finished so far")
        filtered = list(view.get("filtered_images", []))
        downloader = ResultDownloader(client, args.concurrency or DEFAULT_RUN_CONCURRENCY, chain_makes_gray(workload_chain(view)),
                                      output, extension_for(args.image_type))
        render = lambda: f"pulling {progress_bar(downloader.done.value, len(filtered))} {downloader.done.value}/{len(filtered)}  wrong {downloader.wrong.value}"
        started = time.monotonic()
        with ProgressDisplay(sys.stderr, render):
            downloads = downloader.download_all(filtered)
        elapsed = time.monotonic() - started
    finally:
        client.close()
    tally = ProblemTally()
    for download in downloads:
        for problem in download.problems:
            tally.add(problem)
    for failure in view.get("failures", []):
        tally.add(Problem(failure_kind(str(failure.get("error", ""))), f"{failure.get('image_id')}: {failure.get('error')}"))
    saved = sum(download.fetched for download in downloads)
    print(f"pulled {saved}/{len(filtered)} filtered images of workload {args.workload_id} into {output} in {elapsed:.2f} s")
    if view.get("failures"):
        print(f"{len(view['failures'])} images failed and have no result: files are numbered by position among the results")
    for line in tally.lines():
        print(line)
    return EXIT_OK if tally.total == 0 else EXIT_FAILED


def run_progress_text(uploader: FrameUploader | None, total: int, snapshot: WorkloadSnapshot | None) -> str:
    view = snapshot.view if snapshot else {}
    done, failed = int(view.get("done_jobs", 0)), int(view.get("failed_jobs", 0))
    cancelled = int(view.get("cancelled_jobs", 0))
    parts = [progress_bar(done + failed + cancelled, total)]
    if uploader:
        parts.append(f"uploaded {uploader.succeeded.value}/{total}")
        if uploader.failed.value:
            parts.append(f"upload errors {uploader.failed.value}")
    parts.append(f"done {done}/{total}")
    parts.append(f"failed {failed}")
    if cancelled:
        parts.append(f"cancelled {cancelled}")
    if view:
        parts.append(f"running {view.get('running_jobs', 0)}  queued {view.get('queued_jobs', 0)}")
    if view.get("waiting_for"):
        parts.append(f"waiting: {view['waiting_for']}")
    return "  ".join(parts)


@contextmanager
def run_frames(args: argparse.Namespace) -> Iterator[tuple[list[Path], str]]:
    """The frames to run with and a description: given ones, or generated ones (in a temporary
    directory unless -frames-path names an empty one)."""
    count = args.count or DEFAULT_COUNT
    size = args.size or DEFAULT_SIZE
    if args.frames_path:
        directory = Path(args.frames_path)
        frames = list_frames(directory, args.image_type, args.count) if directory.is_dir() else []
        if frames:
            yield frames, f"from {directory}"
            return
        if args.image_type != "png":
            raise StressTestError(f"no frames 0.{args.image_type}, 1.{args.image_type}, ... in {directory}")
        yield generate_frames(directory, count, size, sys.stderr), f"generated {size[0]}x{size[1]} into {directory}"
        return
    if args.image_type != "png":
        raise UsageError("frames are generated as PNG: give -frames-path for other image types")
    with tempfile.TemporaryDirectory(prefix="dpip-frames-") as directory:
        yield generate_frames(Path(directory), count, size, sys.stderr), f"generated {size[0]}x{size[1]} PNG"


def describe_workers(status: dict) -> str:
    workers = status.get("workers") or {}
    return f"{workers.get('alive', '?')} workers, {workers.get('slots', '?')} slots"


def action_run(args: argparse.Namespace) -> int:
    if args.workload_id:
        raise UsageError("run creates its own workload: -workload-id is for push and pull")
    concurrency = args.concurrency or DEFAULT_RUN_CONCURRENCY
    client = ApiClient(args.api)
    try:
        authenticate(client, args)
        status = client.status()  # also checks the server and the token before any work
        workers = describe_workers(status)
        route = upload_route(args.upload_via, status)
        with run_frames(args) as (frames, source):
            return run_flow(client, args, frames, source, concurrency, workers, route)
    finally:
        client.close()


@dataclass
class UploadPhase:
    """What happened from the first upload to the workload's completion (or the timeout)."""
    uploads: list[FrameUpload]
    started: float
    ended: float
    completed: WorkloadSnapshot | None
    final: WorkloadSnapshot
    first_seen: dict[str, float]
    poll_errors: int
    store_throttled: int = 0  # PUTs to the object store answered 500/503 and sent again

    @property
    def uploaded(self) -> list[FrameUpload]:
        return [upload for upload in self.uploads if upload.ok]


@dataclass
class VerifyPhase:
    downloads: list[FilteredDownload]
    seconds: float
    verified_ok: int
    problems: list[Problem]


def upload_and_watch(client: ApiClient, workload_id: str, frames: list[Path], args: argparse.Namespace, concurrency: int,
                     route: UploadRoute) -> UploadPhase:
    """Uploads every frame while polling the workload, then waits until it completes."""
    uploader = FrameUploader(client, workload_id, IMAGE_TYPES[args.image_type], concurrency, route)
    with WorkloadWatcher(client, workload_id, args.poll_interval) as watcher:
        render = lambda: run_progress_text(uploader, len(frames), watcher.latest)
        with ProgressDisplay(sys.stderr, render):
            started = time.monotonic()
            uploads = uploader.upload_all(frames)
            ended = time.monotonic()
            uploaded = sum(upload.ok for upload in uploads)
            outcome = watcher.wait_until_ended(uploaded, ended + args.timeout) if uploaded else None
        first_seen, poll_errors = watcher.first_seen, watcher.poll_errors
    completed = outcome if outcome and not outcome.cancelled else None
    final = outcome or WorkloadSnapshot(client.workload(workload_id), time.monotonic())
    return UploadPhase(uploads, started, ended, completed, final, first_seen, poll_errors, uploader.store_throttled)


def processing_problems(phase: UploadPhase, pairs: Sequence[tuple[FrameUpload, str]], timeout: float) -> list[Problem]:
    """Failed uploads, failed jobs, images unfinished at the timeout, results that do not add up."""
    problems = [upload.problem for upload in phase.uploads if upload.problem]
    view = phase.final.view
    frame_of = {upload.image_id: upload.path.name for upload in phase.uploaded}
    for failure in view.get("failures", []):
        image_id, error = failure.get("image_id"), str(failure.get("error", ""))
        problems.append(Problem(failure_kind(error), f"{frame_of.get(image_id, 'image')} ({image_id}): {error}"))
    unfinished = max(len(phase.uploaded) - phase.final.finished, 0)
    if phase.final.cancelled:
        cancelled = int(view.get("cancelled_jobs", 0))
        reason = f"cancelled at {view.get('cancelled_at')}: {plural(cancelled, 'image')} not filtered"
        problems += [Problem("workload cancelled while it ran", reason)] * max(cancelled, 1)
    elif phase.completed is None and unfinished:
        waiting = f" (the server says: {view['waiting_for']})" if view.get("waiting_for") else ""
        problems += [Problem("not finished before the timeout",
                             f"{unfinished} images still queued or running {timeout:g} s after the uploads{waiting}")] * unfinished
    filtered = view.get("filtered_images", [])
    if phase.completed and len(pairs) != len(filtered):
        problems.append(Problem("result count mismatch", f"{len(filtered)} filtered images for {len(pairs)} uploaded originals that did not fail"))
    return problems


def pull_and_verify(client: ApiClient, args: argparse.Namespace, view: dict, pairs: Sequence[tuple[FrameUpload, str]],
                    concurrency: int, exact_pairing: bool) -> VerifyPhase:
    """Downloads every filtered image, checks it alone and against what the workload's chain makes of its original."""
    filtered = list(view.get("filtered_images", []))
    output = Path(args.output_path) if args.output_path else None
    chain = workload_chain(view)
    downloader = ResultDownloader(client, concurrency, chain_makes_gray(chain), output, extension_for(args.image_type))
    render = lambda: f"pulling {progress_bar(downloader.done.value, len(filtered))} {downloader.done.value}/{len(filtered)}  wrong {downloader.wrong.value}"
    started = time.monotonic()
    with ProgressDisplay(sys.stderr, render):
        downloads = downloader.download_all(filtered)
    seconds = time.monotonic() - started
    problems = [problem for download in downloads for problem in download.problems]
    by_id = {download.image_id: download for download in downloads}
    shape_problems = check_shapes([(upload, by_id[image_id]) for upload, image_id in pairs], exact_pairing, chain)
    problems += [problem for _, problem in shape_problems]
    wrong = {download.image_id for download in downloads if download.problems} | {image_id for image_id, _ in shape_problems if image_id}
    unnamed_wrong = sum(image_id is None for image_id, _ in shape_problems)
    return VerifyPhase(downloads, seconds, max(0, len(filtered) - len(wrong) - unnamed_wrong), problems)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def human_size(count: int) -> str:
    """A byte count in binary units with one decimal (1.4 MiB), or in bytes below 1 KiB."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if round(value, 1) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def delete_run_workload(client: ApiClient, workload_id: str) -> tuple[str, Problem | None]:
    """Deletes the run's workload with its images: what that freed, as the server counted it, or the problem."""
    try:
        answer = client.delete_workload(workload_id)
        images, freed = answer.get("removed_images"), answer.get("removed_bytes")
        if not isinstance(images, int) or not isinstance(freed, int):
            raise StressTestError(f"DELETE /workloads/{workload_id}: no removed_images and removed_bytes in {answer!r:.160}")
    except StressTestError as error:
        return (f"FAILED: the workload and its images may still be on the server: {error}",
                Problem("cleanup: workload not deleted", str(error)))
    cancelled = answer.get("cancelled_jobs")
    text = f"deleted the workload: freed {plural(images, 'image')}, {human_size(freed)} ({freed} bytes)"
    if isinstance(cancelled, int) and cancelled > 0:
        text += f"; {plural(cancelled, 'unfinished job')} cancelled"
    return text, None


def run_flow(client: ApiClient, args: argparse.Namespace, frames: list[Path], source: str, concurrency: int, workers: str,
             route: UploadRoute) -> int:
    """Creates the workload, measures and verifies the run, deletes the workload unless -keep, and reports.
    A run cut short by an error (or Ctrl-C) deletes its workload too, and says so on stderr."""
    workload = create_workload(client, args)
    workload_id = workload["workload_id"]
    log(f"workload {workload_id} ({workload.get('workload_name')}, {describe_processing(workload)}): "
        f"{len(frames)} frames, concurrency {concurrency}")
    try:
        report = measure_run(client, args, workload, frames, source, concurrency, workers, route)
    except BaseException:
        if not args.keep:
            log(f"cleanup after the error: deleting workload {workload_id} (Ctrl-C leaves it)")
            log(f"cleanup: {delete_run_workload(client, workload_id)[0]}")
        raise
    if args.keep:
        report.cleanup = "kept (-keep): the workload and its images stay on the server"
    else:
        report.cleanup, problem = delete_run_workload(client, workload_id)
        if problem:
            report.problems.add(problem)
    print(report.text(), flush=True)
    return EXIT_OK if report.passed else EXIT_FAILED


def measure_run(client: ApiClient, args: argparse.Namespace, workload: dict, frames: list[Path], source: str,
                concurrency: int, workers: str, route: UploadRoute) -> RunReport:
    """Uploads, waits, pulls and verifies: the report of the run, without its cleanup."""
    phase = upload_and_watch(client, workload["workload_id"], frames, args, concurrency, route)
    view = phase.final.view
    # paired by id where the server lists each result's source; else by order, which needs every job
    # finished (with jobs still unfinished there is no telling which originals the results belong to)
    exact = match_results_exactly(client, workload["workload_id"], phase.uploads, view)
    pairs = exact if exact is not None else match_results(phase.uploads, view) if phase.completed else []
    exact_pairing = exact is not None or concurrency == 1
    verify = pull_and_verify(client, args, view, pairs, concurrency, exact_pairing)
    problems = ProblemTally()
    for problem in processing_problems(phase, pairs, args.timeout) + verify.problems:
        problems.add(problem)
    return RunReport(
        api=client.base_url,
        workload=workload,
        workers=workers,
        frames_source=source,
        frame_count=len(frames),
        concurrency=concurrency,
        uploads_via=route.text,
        uploaded=len(phase.uploaded),
        upload_bytes=sum(upload.size for upload in phase.uploaded),
        upload_seconds=phase.ended - phase.started,
        upload_latencies=[upload.finished - upload.started for upload in phase.uploaded],
        done=int(view.get("done_jobs", 0)),
        failed_jobs=int(view.get("failed_jobs", 0)),
        cancelled_jobs=int(view.get("cancelled_jobs", 0)),
        end_to_end_seconds=phase.completed.received - phase.started if phase.completed else None,
        result_latencies=[phase.first_seen[image_id] - upload.finished for upload, image_id in pairs if image_id in phase.first_seen],
        poll_interval=args.poll_interval,
        approximate_pairing=not exact_pairing,
        downloaded=sum(download.fetched for download in verify.downloads),
        download_seconds=verify.seconds,
        verified_ok=verify.verified_ok,
        throttled=client.throttled + phase.store_throttled,
        poll_errors=phase.poll_errors,
        problems=problems,
        expected=expected_summary(workload_chain(view), phase.uploaded),
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WIDTHxHEIGHT, e.g. 640x480, not "{text}"') from None
    if not (1 <= width <= 20000 and 1 <= height <= 20000):
        raise argparse.ArgumentTypeError("width and height must be between 1 and 20000")
    return width, height


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, not "{text}"') from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, not "{text}"') from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def image_type(text: str) -> str:
    value = text.lower().lstrip(".")
    if value in COURSE_IMAGE_TYPES:
        return "png"  # older course scripts passed "filtered"/"original" here; the API ignores it
    if value not in IMAGE_TYPES:
        raise argparse.ArgumentTypeError(f'image type must be one of {", ".join(IMAGE_TYPES)}, not "{text}"')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stress_test.py",
        description="Push, pull and stress-test images through the DPIP REST API (every option takes - or --).",
        epilog="examples:\n"
               "  %(prog)s -action generate -count 20 -size 320x240 -frames-path frames\n"
               "  %(prog)s -action push -workload-id ID -token TOKEN -frames-path frames\n"
               "  %(prog)s -action pull -workload-id ID -token TOKEN -frames-path frames\n"
               "  %(prog)s -action run -count 200 --api http://localhost:8080 -user alice -password alice-secret\n"
               f"  %(prog)s -action run -count 20 -user alice -password alice-secret -operations '{OPERATIONS_EXAMPLE}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )

    def option(*names: str, **kwargs: object) -> None:
        spellings = [spelling for name in names for spelling in (f"-{name}", f"--{name}")]
        parser.add_argument(*spellings, dest=names[0].replace("-", "_"), **kwargs)

    option("action", required=True, choices=("push", "pull", "run", "generate"), help="what to do")
    option("api", default=DEFAULT_API, metavar="URL", help=f"API base address (default {DEFAULT_API})")
    option("token", metavar="TOKEN", help="API token (Authorization: Bearer)")
    option("user", "username", metavar="NAME", help="log in as this user when no -token is given")
    option("password", metavar="PW", help="password for -user (default: $DPIP_PASSWORD, or a prompt)")
    option("register", action="store_true", help="register -user first if the login fails")
    option("workload-id", metavar="ID", help="workload to push to (push creates one when omitted) or pull from")
    option("workload-name", metavar="NAME", help="name of a workload created here (default: the server's)")
    option("filter", "filter-name", choices=FILTERS, help=f"filter of a workload created here (default {DEFAULT_FILTER})")
    option("operations", type=parse_operations_spec, metavar="CHAIN",
           help="instead of -filter, the chain of operations of a workload created here: steps separated by ',', "
                f"parameters after ':' as name=value, e.g. '{OPERATIONS_EXAMPLE}' (see GET /operations)")
    option("frames-path", metavar="DIR", help=f"frames directory: 0.png, 1.png, ... (default {DEFAULT_FRAMES_PATH}; "
                                              "run generates into a temporary one when omitted)")
    option("image-type", type=image_type, default="png", metavar="TYPE", help="frame file extension: png, jpg or jpeg (default png)")
    option("output-path", metavar="DIR", help="where pull (default FRAMES/filtered) or run (default: not saved) writes results")
    option("count", type=positive_int, metavar="N", help=f"frames to generate (default {DEFAULT_COUNT}), or at most N frames to push")
    option("size", type=parse_size, metavar="WxH", help=f"generated frame size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    option("concurrency", type=positive_int, metavar="N",
           help=f"parallel uploads/downloads (default {DEFAULT_RUN_CONCURRENCY}; push: {DEFAULT_PUSH_CONCURRENCY}, "
                "which keeps the server's order exactly the frame order)")
    option("timeout", type=positive_float, default=DEFAULT_TIMEOUT_S, metavar="S",
           help=f"how long to wait for the workload to complete (default {DEFAULT_TIMEOUT_S:.0f})")
    option("poll-interval", type=positive_float, default=DEFAULT_POLL_INTERVAL_S, metavar="S",
           help=f"seconds between polls of the workload (default {DEFAULT_POLL_INTERVAL_S})")
    option("keep", action="store_true",
           help="run: leave the workload and its images on the server; without it, run deletes them at the end and "
                "prints what that freed, and a deletion that fails makes the run fail")
    option("upload-via", choices=UPLOAD_VIA, default="auto",
           help="run, push: how originals go up: 'slots' (POST /uploads, a PUT straight to the object store, confirm), "
                "'api' (POST /images), or 'auto' (default): slots when GET /status says the server offers them")
    option("wait", action="store_true", help="pull: wait until the workload is completed first")
    option("verbose", action="store_true", help="push: print each frame's image id")
    return parser


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": action_generate,
    "push": action_push,
    "pull": action_pull,
    "run": action_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.keep and args.action != "run":
            raise UsageError("-keep is for run: push, pull and generate never delete anything")
        if args.upload_via != "auto" and args.action not in ("run", "push"):
            raise UsageError("-upload-via is for run and push: pull and generate upload nothing")
        if args.operations is not None:
            if args.filter is not None:
                raise UsageError("give -filter or -operations, not both: a filter is a one-step chain (-operations grayscale)")
            if args.action not in ("run", "push") or args.workload_id:
                raise UsageError("-operations is for the workload run or push creates: not with -workload-id, pull or generate")
        return ACTIONS[args.action](args)
    except UsageError as error:
        print(f"stress_test.py: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StressTestError as error:
        print(f"stress_test.py: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nstress_test.py: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
