"""The connection to one API server: the client, the kubeconfig checks, calls, paged lists, and
the client's errors turned into one-line `BackendError`s (credentials taken out)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException

from fleet.backends.base import BackendError, ConflictError, one_line
from fleet.backends.kubernetes.values import as_dict, as_str
from fleet.secret_files import path_within

MERGE_PATCH = "application/merge-patch+json"
# Ask for metadata only; a server that cannot do it falls back to full objects.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KARPENTER = ("karpenter.sh", "v1", "nodepools")
NODECLAIMS = ("karpenter.sh", "v1", "nodeclaims")


@dataclass(frozen=True)
class ApiCall:
    verb: str  # list | get | patch | create | update
    resource: str  # pods, deployments/scale, scaledobjects.keda.sh, ...
    namespace: str | None = None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    cluster_scoped: bool = False

    def __str__(self) -> str:
        what = f"{self.verb} {self.resource}" + (f" {self.name}" if self.name else "")
        if self.cluster_scoped:
            return what
        return what + (f" in namespace {self.namespace}" if self.namespace else " in all namespaces")


_SERVICEACCOUNT = re.compile(r'User "system:serviceaccount:([^":]+):([^"]+)"')
_USER = re.compile(r'User "([^"]+)"')
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")


class KubernetesConnection:
    """The client and the calls every part of the backend makes through it: built on first use
    (`_api`), answered raw and parsed as JSON (`_call`), lists paged (`_list_versioned`), and any
    failure turned into a one-line `BackendError` without credentials (`_api_error`)."""

    page_size = 500  # list chunk size (kubectl's)
    list_concurrency = 4  # lists fetched side by side during a snapshot

    def __init__(
        self,
        *,
        kubeconfig_path: str = "",
        context: str = "",
        in_cluster: bool = False,
        timeout_seconds: float = 10.0,
        namespaces: tuple[str, ...] = (),
        secret_dirs: list[Path] | None = None,
    ):
        self.kubeconfig_path = kubeconfig_path
        # Folders a kubeconfig named by a cluster row may be read from (fleet/secret_files.py);
        # None for a backend built by hand (tests, benches).
        self.secret_dirs = secret_dirs
        self.context = context
        self.in_cluster = in_cluster
        self.timeout_seconds = float(timeout_seconds) if timeout_seconds and timeout_seconds > 0 else 10.0
        self.namespaces = tuple(namespaces)
        self._client: k8s.ApiClient | None = None
        self._client_lock = threading.Lock()
        self._warnings: list[str] = []

    # ------------------------------------------------------------------ connection

    def _api(self) -> k8s.ApiClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> k8s.ApiClient:
        configuration = k8s.Configuration()
        # Retry a refused/failed connection once (nothing was sent); never re-send after a read
        # timeout, so a stalled API server fails in timeout_seconds, not a multiple of it.
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, other=0)
        if self.in_cluster:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except Exception:  # noqa: BLE001 - the loader's messages name token paths; say it plainly
                raise BackendError(
                    "in-cluster config is unavailable: not running in a pod with a ServiceAccount token"
                ) from None
            return k8s.ApiClient(configuration)
        path = self._kubeconfig_file()
        if self.kubeconfig_path and self.secret_dirs is not None and not path_within(path, self.secret_dirs):
            raise BackendError(
                f"kubeconfig {path}: is outside the folders ScaleDeck reads secrets from; "
                "move it there or add its folder to SCALEDECK_SECRET_DIRS"
            )
        self._check_kubeconfig(path)
        try:
            api = k8s_config.new_client_from_config(
                config_file=path,
                context=self.context or None,
                persist_config=False,  # never write tokens back into someone's kubeconfig
                client_configuration=configuration,
            )
        except Exception as exc:  # noqa: BLE001 - its messages can carry commands and paths; never echo them
            hint = ""
            text = str(exc)
            if "exec" in text or "cmd-path" in text:
                hint = " (its credential plugin failed)"
            elif "File does not exist" in text:
                hint = " (a certificate or key file it names does not exist)"
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig{hint}") from None
        server = urlsplit(api.configuration.host or "")
        if server.scheme not in ("http", "https") or not server.hostname:
            api.close()
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (its cluster has no server URL)")
        return api

    def _kubeconfig_file(self) -> str:
        path = self.kubeconfig_path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        return os.path.expanduser(path)

    def _check_kubeconfig(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read(5_000_000)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not text"
            raise BackendError(f"kubeconfig {path}: cannot be read ({reason})") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError:
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (not YAML)") from None
        if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
            raise BackendError(f"kubeconfig {path}: is not a valid kubeconfig (no contexts)")
        names = {as_str(as_dict(c).get("name")) for c in config["contexts"]}
        context = self.context or as_str(config.get("current-context"))
        if not context:
            raise BackendError(f"kubeconfig {path}: has no current-context; name a context")
        if context not in names:
            raise BackendError(f"kubeconfig {path}: has no context '{one_line(context, 100)}'")

    @property
    def host(self) -> str:
        """The API server, as scheme://host:port (no credentials, no path)."""
        raw = self._client.configuration.host if self._client is not None else ""
        try:
            parts = urlsplit(raw)
            return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        except ValueError:
            return "the configured server"

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ calls and errors

    def _call(self, action: ApiCall, method: Callable, *args, **kwargs) -> dict:
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise self._api_error(exc, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc) from None
        except OpenApiException:
            raise BackendError(f"cannot {action}: the request is not valid") from None
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise BackendError(
                f"the Kubernetes API at {self.host} answered {action} with something that is not JSON", transient=True
            )
        return doc

    def _transport_error(self, exc: Exception) -> BackendError:
        reason = getattr(exc, "reason", None) or exc
        text = str(reason).lower()
        transient = True
        # Order matters: in urllib3 2, NameResolutionError < NewConnectionError < ConnectTimeoutError.
        if isinstance(reason, urllib3.exceptions.NameResolutionError) or "name or service not known" in text:
            why = "DNS lookup failed"
        elif isinstance(reason, urllib3.exceptions.NewConnectionError) or "refused" in text:
            why = "connection refused" if "refused" in text else "cannot connect"
        elif isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            why = f"connection timed out after {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.SSLError):
            why, transient = "TLS failed (is the server certificate trusted?)", False
        elif isinstance(reason, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) or "timed out" in text:
            why = f"no answer within {self.timeout_seconds:g} s"
        elif isinstance(reason, urllib3.exceptions.ProxyError):
            why = "the proxy failed"
        else:
            why = "the connection broke"
        return BackendError(f"cannot reach the Kubernetes API at {self.host}: {why}", transient=transient)

    def _redact(self, text: str) -> str:
        """Take credentials out of server-supplied text (a proxy or webhook may echo them)."""
        configuration = self._client.configuration if self._client is not None else None
        secrets = []
        if configuration is not None:
            for value in [*configuration.api_key.values(), configuration.password]:
                if isinstance(value, str):
                    secrets.append(value.split(" ", 1)[-1] if value.lower().startswith("bearer ") else value)
        for secret in secrets:
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return _BEARER.sub("Bearer ***", text)

    def _api_error(self, exc: ApiException, action: ApiCall) -> BackendError:
        error = self._describe_api_error(exc, action)
        error.args = (self._redact(str(error)),)
        return error

    def _describe_api_error(self, exc: ApiException, action: ApiCall) -> BackendError:
        status = exc.status or 0
        try:
            message = one_line(as_str(as_dict(json.loads(exc.body or "")).get("message")), 200)
        except (ValueError, TypeError):
            message = ""
        if status == 401:
            return BackendError(f"credentials refused (401) by the Kubernetes API at {self.host}", status=401)
        if status == 403:
            account = _SERVICEACCOUNT.search(message)
            user = _USER.search(message)
            if account:
                who = f"the ServiceAccount {account.group(1)}/{account.group(2)}"
            elif user:
                who = f'user "{one_line(user.group(1), 80)}"'
            else:
                who = "the ServiceAccount" if self.in_cluster else "these credentials"
            hint = ""
            if action.namespace is None and not action.cluster_scoped:
                hint = "; list the namespaces it may read in the cluster's settings"
            return BackendError(f"forbidden: {who} may not {action} (403){hint}", status=403)
        if status == 409:
            return ConflictError(f"{action.resource} {action.namespace}/{action.name} changed since it was read (409)")
        if status == 404:
            return BackendError(f"not found: {action} (404)", status=404)
        if status == 429 or status >= 500:
            return BackendError(
                f"the Kubernetes API at {self.host} failed to {action}: {status} {one_line(exc.reason or '', 60)}",
                transient=True,
                status=status,
            )
        detail = f": {message}" if message else ""
        return BackendError(f"the Kubernetes API refused to {action} ({status}){detail}", status=status)

    def _list(self, action: ApiCall, method: Callable, *args, **kwargs) -> list:
        return self._list_versioned(action, method, *args, **kwargs)[0]

    def _list_versioned(self, action: ApiCall, method: Callable, *args, **kwargs) -> tuple[list, str]:
        """Every item of a list, page by page, and the list's resourceVersion (where a watch
        starts). An expired continue token restarts the list once."""
        for _attempt in range(2):
            items: list = []
            token = None
            try:
                for _page in range(100_000):
                    doc = self._call(action, method, *args, limit=self.page_size, _continue=token, **kwargs)
                    page = doc.get("items") or []
                    if not isinstance(page, list):
                        raise BackendError(f"the Kubernetes API at {self.host} answered {action} without a list")
                    items += page
                    meta = as_dict(doc.get("metadata"))
                    token = meta.get("continue")
                    if not token or not isinstance(token, str):
                        return items, as_str(meta.get("resourceVersion"))
                raise BackendError(f"cannot {action}: the API server kept sending more pages")
            except BackendError as exc:
                if exc.status == 410 and token:
                    continue
                raise
        raise BackendError(f"cannot {action}: the list kept changing under us (410)", transient=True)

    def _list_namespaced(self, resource: str, every: Callable, one: Callable, *args, **kwargs) -> list:
        if not self.namespaces:
            return self._list(ApiCall("list", resource), every, *args, **kwargs)
        items: list = []
        for namespace in self.namespaces:
            items += self._list(ApiCall("list", resource, namespace), one, *args, namespace=namespace, **kwargs)
        return items

    def _list_custom(self, group: str, version: str, plural: str, *, namespaced: bool) -> list | None:
        """A custom resource list; None when its CRD is not installed (404)."""
        custom = k8s.CustomObjectsApi(self._api())
        resource = f"{plural}.{group}"

        def every(**kw):
            return custom.list_cluster_custom_object(group, version, plural, **kw)

        def one(namespace, **kw):
            return custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)

        try:
            if namespaced:
                return self._list_namespaced(resource, every, one)
            return self._list(ApiCall("list", resource, cluster_scoped=True), every)
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    def _list_optional(self, resource: str, missing: list[str], lister: Callable[[], list]) -> list:
        """A list a real API server always serves, but a partial one (an aggregating proxy, a
        minimal test API) may answer 404 for: read as none, with a warning, rather than failing
        the sync. Only for lists whose absence loses detail, not safety: ReplicaSets (pod owners
        then come from the pod-template-hash name), HPAs, ResourceQuotas."""
        try:
            return lister()
        except BackendError as exc:
            if exc.status != 404:
                raise
            missing.append(f"the API server does not serve {resource} (404): read as none")
            return []

    # ------------------------------------------------------------------ reading
