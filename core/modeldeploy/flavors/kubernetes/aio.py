"""Asynchronous reads and watches of one custom resource kind, over plain HTTP with httpx.

The Airflow triggerer holds hundreds of waits in one event loop, so a wait must not hold a
thread. This client reuses the sync client's configuration (host, bearer token, TLS files
from the kubeconfig) and raises the sync client's `ApiException` for API errors, so error
wording, retry and 410 handling stay the ones in `errors` and `retry`.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from modeldeploy.flavors.kubernetes.resources import CustomResources


@functools.lru_cache(maxsize=16)
def _ssl_context(
    verify: bool, ca_file: str | None, cert_file: str | None, key_file: str | None
) -> ssl.SSLContext:
    """One TLS context per distinct kubeconfig; building one costs milliseconds and memory."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


class AsyncResources:
    """GET, label-selector list and watch of `resources`' kind, without blocking a thread."""

    def __init__(self, resources: CustomResources) -> None:
        self.resources = resources
        configuration = resources.kube.api_client.configuration
        self._configuration = configuration
        self.host = str(configuration.host).rstrip("/")
        k = resources.kind
        self.base = f"/apis/{k.group}/{k.version}/namespaces/{resources.namespace}/{k.plural}"
        self._client: httpx.AsyncClient | None = None

    def _headers(self) -> dict[str, str]:
        """Auth headers, asked for per request so refreshed tokens (exec plugins) are used."""
        configuration = self._configuration
        hook = getattr(configuration, "refresh_api_key_hook", None)
        if hook is not None:
            hook(configuration)
        headers = {"Accept": "application/json"}
        for auth in configuration.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[str(auth["key"])] = str(auth["value"])
        return headers

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            c = self._configuration
            verify: ssl.SSLContext | bool = False
            if self.host.startswith("https"):
                verify = _ssl_context(
                    bool(c.verify_ssl), c.ssl_ca_cert, c.cert_file or None, c.key_file or None
                )
            connect, _ = self.resources.kube.timeout
            self._client = httpx.AsyncClient(
                base_url=self.host,
                verify=verify,
                trust_env=False,
                timeout=httpx.Timeout(self.resources.kube.request_timeout, connect=connect),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def get(self, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        response = await self._send("GET", f"{self.base}/{name}")
        if response.status_code == 404:
            return None
        return _json(response)

    async def list(self, label_selector: str) -> list[dict[str, Any]]:
        response = await self._send("GET", self.base, params={"labelSelector": label_selector})
        items = _json(response).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    async def watch(
        self, name: str, resource_version: str, timeout_seconds: int, read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events of one object from `resource_version`; leaving the loop (or being
        cancelled) closes the connection at once."""
        import httpx

        self.resources.requests += 1
        params = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = httpx.Timeout(read_timeout, connect=self.resources.kube.timeout[0])
        try:
            async with self.client.stream(
                "GET", self.base, params=params, headers=self._headers(), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _api_exception(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        raise _status_exception(event.get("object") or {})
                    yield event
        except httpx.ReadTimeout:
            return  # a silent watch; the caller checks its deadline
        except httpx.TransportError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None

    async def _send(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> httpx.Response:
        import httpx

        self.resources.requests += 1
        try:
            response = await self.client.request(
                method, path, params=params, headers=self._headers()
            )
        except httpx.TransportError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 400 and response.status_code != 404:
            raise _api_exception(response)
        return response


def _json(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    return data if isinstance(data, dict) else {}


def _api_exception(response: httpx.Response) -> Exception:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=response.status_code, reason=response.reason_phrase)
    exc.body = response.text
    exc.headers = dict(response.headers)
    return exc


def _status_exception(status: dict[str, Any]) -> Exception:
    """An ERROR watch event (e.g. 410 Expired) as the `ApiException` the sync client raises."""
    from kubernetes.client.exceptions import ApiException

    code = status.get("code")
    exc = ApiException(status=code if isinstance(code, int) else 500, reason=status.get("reason"))
    exc.body = json.dumps(status)
    return exc
