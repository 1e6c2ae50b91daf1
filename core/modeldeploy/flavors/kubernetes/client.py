"""A configured Kubernetes API client for one deployer, built from its settings.

Each deployer gets its own `ApiClient` and `Configuration` instead of the library's global
default, so two deployers in one process can talk to two clusters (or two contexts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kubernetes.retry import RetryPolicy
from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings
from modeldeploy.waiting import current_deadline

CONNECT_TIMEOUT = 5.0
DEFAULT_NAMESPACE = "default"
# Where a pod finds its own namespace (kubectl and client-go read the same file in-cluster).
POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
#: what one request gets even when the operation's deadline has (nearly) passed
MIN_REQUEST_TIMEOUT = 1.0


@dataclass
class KubeClient:
    """The API objects one deployer uses, plus how it calls them (timeouts, retries)."""

    api_client: Any
    namespace: str
    source: str
    request_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _custom: Any = None
    _core: Any = None

    @property
    def custom(self) -> Any:
        if self._custom is None:
            from kubernetes import client

            self._custom = client.CustomObjectsApi(self.api_client)
        return self._custom

    @property
    def core(self) -> Any:
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api(self.api_client)
        return self._core

    @property
    def host(self) -> str | None:
        """The API server's address (no credentials), for error messages."""
        configuration = getattr(self.api_client, "configuration", None)
        return getattr(configuration, "host", None)

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeout of one ordinary request; never past the deadline of the
        operation in progress (`modeldeploy.waiting.within`)."""
        read = self.request_timeout
        deadline = current_deadline()
        if deadline is not None:
            read = max(MIN_REQUEST_TIMEOUT, min(read, deadline.remaining()))
        return (min(CONNECT_TIMEOUT, read), read)

    def _json(
        self, method: Any, *args: Any, doing: str, missing_ok: bool = False, **kw: Any
    ) -> Any:
        """One API call answered as plain JSON (no client models); None for a 404 when
        `missing_ok`."""
        import json

        from modeldeploy.flavors.kubernetes.errors import api_status, translate

        try:
            resp: Any = self.retry.call(
                method, *args, _preload_content=False, _request_timeout=self.timeout, **kw
            )
        except Exception as exc:
            if missing_ok and api_status(exc) == 404:
                return None
            raise translate(exc, doing) from None
        return json.loads(resp.data)

    def list_json(self, method: Any, selector: str, what: str) -> list[dict[str, Any]]:
        """Items of a namespaced list call (`method`, e.g. `core.list_namespaced_pod`) as
        plain dicts, without deserializing them into client models."""
        found = self._json(
            method,
            self.namespace,
            label_selector=selector,
            doing=f"listing {what} {selector} in {self.namespace}",
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    def read_json(
        self, method: Any, name: str, what: str, deadline: Any = None
    ) -> dict[str, Any] | None:
        """One namespaced object (`method`, e.g. `core.read_namespaced_secret`) as a plain
        dict; None when it does not exist."""
        found: dict[str, Any] | None = self._json(
            method,
            name,
            self.namespace,
            deadline=deadline,
            doing=f"reading {what} {self.namespace}/{name}",
            missing_ok=True,
        )
        return found

    def close(self) -> None:
        close = getattr(self.api_client, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"KubeClient(source={self.source!r}, namespace={self.namespace!r})"


def _fresh_configuration() -> Any:
    from kubernetes.client import Configuration

    # type.__call__ skips the metaclass that would copy the process-wide default.
    configuration = type.__call__(Configuration)
    # Our RetryPolicy retries what is safe to retry; urllib3's own retries would hide
    # drops from it and repeat non-idempotent requests behind our back.
    configuration.retries = False
    return configuration


def connect(settings: KubernetesDeployerSettings) -> KubeClient:
    """Build the client, trying the configured sources in order; one clear error if none works."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    tried: list[str] = []

    def done(configuration: Any, source: str, default_namespace: str | None) -> KubeClient:
        return KubeClient(
            api_client=client.ApiClient(configuration),
            namespace=settings.namespace or default_namespace or DEFAULT_NAMESPACE,
            source=source,
            request_timeout=settings.request_timeout,
            retry=RetryPolicy(max_retries=settings.max_retries),
        )

    if settings.in_cluster:
        configuration = _fresh_configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise InvalidConfigError(
                f"in_cluster is set but this process is not running in a Kubernetes pod "
                f"({exc}); unset in_cluster and give a kubeconfig instead"
            ) from None
        return done(configuration, "in-cluster service account", _pod_namespace())

    if settings.kubeconfig is not None:
        configuration = _fresh_configuration()
        try:
            config.load_kube_config_from_dict(
                settings.kubeconfig,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, KeyError, TypeError, ValueError) as exc:
            raise InvalidConfigError(
                f"the kubeconfig given as a dict cannot be used: {_config_problem(exc)}"
            ) from None
        return done(
            configuration, "kubeconfig dict", _dict_namespace(settings.kubeconfig, settings.context)
        )

    # A path may list several files (KUBECONFIG style, joined with os.pathsep); the client
    # merges them, so contexts can come from one file and users from another.
    sources: list[tuple[str, bool]] = []
    if settings.kubeconfig_path:
        sources.append((settings.kubeconfig_path, True))
    else:
        if os.environ.get("KUBECONFIG"):
            sources.append((os.environ["KUBECONFIG"], False))
        sources.append(("~/.kube/config", False))

    for source, explicit in sources:
        files = [os.path.expanduser(p) for p in source.split(os.pathsep) if p]
        existing = [p for p in files if Path(p).is_file()]
        if not existing:
            if explicit:
                raise InvalidConfigError(
                    f"kubeconfig_path {source!r} does not exist or is not a file"
                )
            tried.append(f"{source} (missing)")
            continue
        path = os.pathsep.join(existing)
        configuration = _fresh_configuration()
        try:
            config.load_kube_config(
                config_file=path,
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, KeyError, TypeError, ValueError) as exc:
            if explicit:
                raise InvalidConfigError(
                    f"kubeconfig {path} cannot be used: {_config_problem(exc)}"
                ) from None
            tried.append(f"{path} ({_config_problem(exc)})")
            continue
        return done(configuration, f"kubeconfig {path}", _file_namespace(path, settings.context))

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = _fresh_configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
            return done(configuration, "in-cluster service account", _pod_namespace())
        except ConfigException as exc:
            tried.append(f"in-cluster service account ({exc})")
    else:
        tried.append("in-cluster service account (not running in a pod)")

    raise InvalidConfigError(
        "no Kubernetes configuration works; tried: "
        + "; ".join(tried)
        + ". Set kubeconfig_path (or KUBECONFIG), pass kubeconfig as a dict, or in_cluster=True"
    )


def _config_problem(exc: BaseException) -> str:
    """Describe a kubeconfig problem without echoing its (secret-bearing) content."""
    text = str(exc)
    if isinstance(exc, KeyError | TypeError):
        return f"malformed kubeconfig ({type(exc).__name__})"
    return text[:300]


# The namespace when none is configured, as kubectl picks it: the context's `namespace`
# (k8s.io/client-go tools/clientcmd DirectClientConfig.Namespace), else "default".


def _context_namespace(doc: dict[str, Any], context: str | None) -> str | None:
    wanted = context or doc.get("current-context")
    for entry in doc.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == wanted:
            namespace = (entry.get("context") or {}).get("namespace")
            return str(namespace) if namespace else None
    return None


def _dict_namespace(doc: dict[str, Any], context: str | None) -> str | None:
    return _context_namespace(doc, context)


def _file_namespace(path: str, context: str | None) -> str | None:
    """From the first file that names the context (merged files: first one wins, as in
    client-go's merge of KUBECONFIG lists)."""
    import yaml

    wanted = context
    docs: list[dict[str, Any]] = []
    for part in path.split(os.pathsep):
        try:
            loaded = yaml.safe_load(Path(part).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            docs.append(loaded)
    if wanted is None:
        wanted = next((d["current-context"] for d in docs if d.get("current-context")), None)
    for doc in docs:
        if any(isinstance(c, dict) and c.get("name") == wanted for c in doc.get("contexts") or []):
            return _context_namespace(doc, wanted)
    return None


def _pod_namespace() -> str | None:
    try:
        return Path(POD_NAMESPACE_FILE).read_text().strip() or None
    except OSError:
        return None
