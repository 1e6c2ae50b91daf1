"""The one redaction step for everything the engine logs or raises.

Secrets reach us inside URIs (``http://user:password@host``, ``?token=...``), connections
and blocks, and come back inside other libraries' error texts (MLflow quotes the full URL
it called). Every message passes through `redact` before it is logged or raised:
`ModelDeployError` redacts its own message, the engine's loggers carry `RedactingFilter`,
and skins call `redact` on what they log or raise themselves.

Besides patterns, values registered with `register_secret` (a URI's password, a token
field of a block) are replaced wherever they appear, also percent-encoded. Skins may add
a sink (e.g. Airflow's ``mask_secret``) so their orchestrator masks the same values in
output we never see. Stdlib only: `modeldeploy.errors`, which everything imports, needs it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
#: shorter values are too likely to appear by chance to be replaced everywhere
MIN_SECRET_LENGTH = 4

# scheme://userinfo@ : the password (after the first ':'), or a bare token, is hidden.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/@?#'\"]+)@")
_TOKEN_PARAM = re.compile(
    r"(?P<key>[?&;](?:access_token|token|api[_-]?key|apikey|password|passwd|secret|"
    r"client_secret|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential)=)(?P<value>[^&;#\s'\"]+)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=\-]{8,})")

_lock = threading.Lock()
_secrets: set[str] = set()
_sinks: list[Callable[[str], object]] = []


def register_secret(value: str | None) -> None:
    """Hide `value` wherever it appears in what we log or raise, and tell the sinks."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote(value, safe="/:")}
    with _lock:
        new = forms - _secrets
        _secrets.update(forms)
        sinks = list(_sinks)
    if new:
        for sink in sinks:
            sink(value)


def register_uri(uri: str | None) -> None:
    """Register the password (or bare token) and the token parameters of a URI."""
    if not uri or ("://" not in uri and "?" not in uri):
        return
    try:
        parts = urlsplit(uri)
    except ValueError:
        return
    if parts.password:
        register_secret(unquote(parts.password))
    elif parts.username and "@" in parts.netloc and ":" not in parts.netloc.split("@")[0]:
        register_secret(unquote(parts.username))  # https://TOKEN@host
    for match in _TOKEN_PARAM.finditer("?" + parts.query if parts.query else ""):
        register_secret(unquote(match.group("value")))


_SECRET_KEY = re.compile(
    r"password|passwd|token|secret|private[-_]?key|client-key-data|account[-_]?key|"
    r"api[-_]?key|credential",
    re.IGNORECASE,
)


def register_secrets_in(value: object, key: str = "", depth: int = 0) -> None:
    """Register the secrets inside a settings value: `SecretStr`s, strings under secret-
    sounding keys (a kubeconfig's `token`), URIs' passwords; through pydantic models,
    mappings and lists."""
    if depth > 8:
        return
    reveal = getattr(value, "get_secret_value", None)
    if callable(reveal):
        value = reveal()
        if isinstance(value, str):
            register_secret(value)
    if isinstance(value, str):
        if key and _SECRET_KEY.search(key):
            register_secret(value)
        register_uri(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            register_secrets_in(v, str(k), depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            register_secrets_in(item, key, depth + 1)
    elif hasattr(type(value), "__pydantic_fields__"):
        for k, v in vars(value).items():
            register_secrets_in(v, k, depth + 1)


def add_secret_sink(sink: Callable[[str], object]) -> None:
    """Also hand every secret (already known ones included) to `sink`, once each."""
    with _lock:
        if sink in _sinks:
            return
        _sinks.append(sink)
        known = sorted(s for s in _secrets if "%" not in s)
    for value in known:
        sink(value)


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    kept = f"{user}:{MASK}" if colon else MASK
    return f"{match.group('scheme')}{kept}@"


def redact(text: str) -> str:
    """`text` with URI passwords, token parameters, auth headers and known secrets hidden."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _USERINFO.sub(_hide_userinfo, text)
    text = _TOKEN_PARAM.sub(lambda m: m.group("key") + MASK, text)
    return _AUTH_HEADER.sub(lambda m: m.group("key") + MASK, text)


def redact_uri(uri: str) -> str:
    """A URI fit for a message: its password and tokens hidden, registered for later."""
    register_uri(uri)
    return redact(uri)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback through `redact` before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's problem, not ours
            return True
        if record.exc_info and record.exc_info[1] is not None:
            # Handlers (Airflow's structlog, Prefect's API handler) render exc_info their
            # own way; hand them the traceback as redacted text instead.
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact(message), None
        return True


_FILTER = RedactingFilter()


def get_logger(name: str = "modeldeploy") -> logging.Logger:
    """A logger of the engine, with the redacting filter on it (filters do not inherit)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
