"""Destination keys at rest: sealed with Fernet before they reach the control topic, opened by who holds a secret.

A deployment's secrets come from ``COLLECTORS_SECRET_KEY`` (comma-separated) or ``COLLECTORS_SECRET_KEY_FILE``
(one per line, what container and Kubernetes secrets mount), newest first. Keys are sealed with the newest and
opened with any of them (:class:`~cryptography.fernet.MultiFernet`), so a secret can be rotated while workers
run. A collector document keeps its sealed key in ``destination.sealed_key``, a workflow document each model
node's in the node's ``sealed_key``; a document written in clear by an earlier version (``key``) is still read,
and sealed on its next write.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV_SECRET = "COLLECTORS_SECRET_KEY"
ENV_SECRET_FILE = "COLLECTORS_SECRET_KEY_FILE"
SEALED_FIELD = "sealed_key"
HOW_TO_MAKE_ONE = (
    f"make one with `collectors secrets generate` and give it as {ENV_SECRET} (several, newest first, "
    f"comma-separated) or in the file named by {ENV_SECRET_FILE} (one per line); every worker, the management "
    "API and the operations commands need the same secrets"
)


class SecretError(Exception):
    """No usable secret is configured; the message says how to give one."""


class Undecryptable(Exception):
    """A sealed key that none of the configured secrets opens (a wrong or retired secret, or a damaged record)."""


def generate_secret() -> str:
    """A new random secret (32 bytes, URL-safe base64: what Fernet takes)."""
    return Fernet.generate_key().decode()


def same_key(given: str, expected: str) -> bool:
    """Whether two keys are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


class SecretBox:
    """Seals and opens keys with a deployment's secrets, the first one the newest."""

    def __init__(self, secrets: Sequence[str], *, origin: str = ENV_SECRET) -> None:
        if not secrets:
            raise SecretError(f"no secret to seal keys with: {HOW_TO_MAKE_ONE}")
        fernets: list[Fernet] = []
        for position, secret in enumerate(secrets, start=1):
            try:
                fernets.append(Fernet(secret.encode()))
            except (ValueError, TypeError):
                raise SecretError(
                    f"secret #{position} of {origin} is not a Fernet secret (32 bytes in URL-safe base64, 44 "
                    f"characters); {HOW_TO_MAKE_ONE}"
                ) from None
        self._newest = fernets[0]
        self._all = MultiFernet(fernets)
        self.count = len(fernets)

    def seal(self, clear_key: str) -> str:
        """The key encrypted and authenticated with the newest secret."""
        return self._newest.encrypt(clear_key.encode()).decode()

    def open(self, sealed: str) -> str:
        """The clear key of a sealed one; :class:`Undecryptable` when no configured secret opens it."""
        try:
            clear_key = self._all.decrypt(sealed.encode()).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise Undecryptable(
                f"its stored key cannot be decrypted with the {self.count} configured secret(s) (a wrong or "
                f"retired secret): give the secret it was sealed with in {ENV_SECRET}, or set a new key"
            ) from None
        KEY_REDACTION.remember(clear_key)
        return clear_key

    def is_current(self, sealed: str) -> bool:
        """Whether a sealed key was sealed with the newest secret."""
        try:
            self._newest.decrypt(sealed.encode())
        except (InvalidToken, ValueError):
            return False
        return True


def load_box(environ: Mapping[str, str] | None = None) -> SecretBox:
    """The secrets of ``COLLECTORS_SECRET_KEY`` or ``COLLECTORS_SECRET_KEY_FILE``; :class:`SecretError` if none."""
    environ = os.environ if environ is None else environ
    inline, file_name = environ.get(ENV_SECRET, "").strip(), environ.get(ENV_SECRET_FILE, "").strip()
    if inline and file_name:
        raise SecretError(f"give the secrets in {ENV_SECRET} or in {ENV_SECRET_FILE}, not both")
    if file_name:
        try:
            text = Path(file_name).read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"cannot read {ENV_SECRET_FILE}={file_name}: {exc.strerror}") from None
        secrets = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        return SecretBox(secrets, origin=f"{ENV_SECRET_FILE} ({file_name})")
    return SecretBox([part.strip() for part in inline.split(",") if part.strip()])


# --- documents of the control topic ------------------------------------------------------------------------


def _nodes(nodes: Any) -> Iterator[dict[str, Any]]:
    for node in nodes if isinstance(nodes, list) else ():
        if isinstance(node, dict):
            yield node
            yield from _nodes(node.get("nodes"))


def key_holders(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parts of a stored document that hold a key: a collector's destination, a workflow's model nodes."""
    kind = document.get("kind", "collector")
    if kind == "collector":
        collector = document.get("collector")
        destination = collector.get("destination") if isinstance(collector, dict) else None
        return [destination] if isinstance(destination, dict) else []
    if kind == "workflow":
        workflow = document.get("workflow")
        nodes = workflow.get("nodes") if isinstance(workflow, dict) else None
        return [node for node in _nodes(nodes) if node.get("operator") == "model"]
    return []


def _has(document: Mapping[str, Any], field: str) -> bool:
    return any(isinstance(holder.get(field), str) for holder in key_holders(document))


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(document))
    return copied


def seal_document(document: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A document as written to the topic: each clear ``key`` (a collector's destination, a workflow's model
    nodes) replaced by its ``sealed_key``."""
    if not _has(document, "key"):
        return document
    sealed = _copy(document)
    for holder in key_holders(sealed):
        if isinstance(holder.get("key"), str):
            holder[SEALED_FIELD] = box.seal(holder.pop("key"))
    return sealed


def open_document(document: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A document as read from the topic, its keys in clear (a clear record of an earlier version is returned
    as it is); :class:`Undecryptable` when a sealed key cannot be opened."""
    for holder in key_holders(document):
        if isinstance(holder.get("key"), str):
            KEY_REDACTION.remember(holder["key"])
    if not _has(document, SEALED_FIELD):
        return document
    opened = _copy(document)
    for holder in key_holders(opened):
        if isinstance(holder.get(SEALED_FIELD), str):
            holder["key"] = box.open(holder.pop(SEALED_FIELD))
    return opened


def opened_or_keyless(document: dict[str, Any], box: SecretBox) -> tuple[dict[str, Any], str | None]:
    """A document with its keys opened, and None; or, when no configured secret opens them, the document with
    empty keys (so it still validates and can be shown) and why it cannot run."""
    try:
        return open_document(document, box), None
    except Undecryptable as exc:
        keyless = _copy(document)
        for holder in key_holders(keyless):
            if holder.pop(SEALED_FIELD, None) is not None:
                holder["key"] = ""
        doing = "post" if keyless.get("kind", "collector") == "collector" else "call its model"
        return keyless, f"cannot {doing}: {exc}"


def redacted_document(document: Any) -> Any:
    """A record as it may be shown: the clear keys of a record of an earlier version redacted."""
    if not isinstance(document, dict) or not _has(document, "key"):
        return document
    shown = _copy(document)
    for holder in key_holders(shown):
        if isinstance(holder.get("key"), str):
            holder["key"] = redact(holder["key"])
    return shown


def resealed(document: dict[str, Any], box: SecretBox) -> dict[str, Any] | None:
    """The document sealed with the newest secret when it is not already (in clear, or sealed with an older
    secret); None when it needs nothing. :class:`Undecryptable` when no configured secret opens it."""
    stale = any(
        isinstance(holder.get("key"), str)
        or (isinstance(holder.get(SEALED_FIELD), str) and not box.is_current(holder[SEALED_FIELD]))
        for holder in key_holders(document)
    )
    return seal_document(open_document(document, box), box) if stale else None


# --- redaction of logs -------------------------------------------------------------------------------------


def redact(key: str) -> str:
    """A key as it may appear in logs and errors: its first 4 characters."""
    return f"{key[:4]}…" if len(key) > 4 else "…"


class KeyRedaction:
    """Replaces every key this process has opened or been given by its redacted form, in each log record's
    message, arguments and traceback, whatever library logs it (installed by :func:`install_redaction`)."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, clear_key: str) -> None:
        """Redact this key from now on (keys shorter than 8 characters are not secrets worth a pattern)."""
        if len(clear_key) >= 8 and clear_key not in self._keys and len(self._keys) < self.MAX_KEYS:
            self._keys.add(clear_key)
            self._pattern = None

    def scrub(self, text: str) -> str:
        """The text with every remembered key redacted."""
        if not self._keys:
            return text
        if self._pattern is None:
            self._pattern = re.compile("|".join(re.escape(k) for k in sorted(self._keys, key=len, reverse=True)))
        return self._pattern.sub(lambda match: redact(match.group()), text)

    def scrub_record(self, record: logging.LogRecord) -> None:
        """Redact a record in place: its message formatted and scrubbed, its traceback formatted and scrubbed."""
        if not self._keys:
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the message: logging reports it as usual
            return
        scrubbed = self.scrub(message)
        if scrubbed != message:  # formatted here, so no argument (nor a formatter's) can bring the key back
            record.msg, record.args = scrubbed, ()
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)


KEY_REDACTION = KeyRedaction()
"""The process's redaction: keys are remembered as they are opened or received."""


def install_redaction() -> None:
    """Redact remembered keys from every log record the process makes, from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        KEY_REDACTION.scrub_record(record)
        return record

    redacting_factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)
