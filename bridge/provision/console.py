"""A small synchronous client for the part of Dify's console API (`/console/api`) that
provisioning needs: setup, login, DSL import, publish, Service API keys.

The protocol is the one recorded from Dify 1.13.2 (recordings console/, README there): the
password is sent base64-encoded, the session lives in cookies (access_token, csrf_token, maybe
`__Host-`-prefixed), and every authenticated call, GET included, repeats the csrf_token cookie in
an `X-CSRF-Token` header. Secrets never go into an exception message.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import msgspec

from .wire import ApiKey, ApiKeyList, AppDetail, ErrorBody, ImportResult, SetupStatus

GRAPH_MODES = frozenset({"advanced-chat", "workflow"})
_SUFFIXES = ("/console/api", "/v1")


class ConsoleError(Exception):
    """A console call failed. `kind` is Dify's error code (`authentication_failed`,
    `max_keys_exceeded`, ...) or "unreachable" / "not_dify" for transport-level trouble."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def console_base(dify_url: str) -> str:
    """The Dify root URL, whether given as the root, the Service API (`…/v1`) or the console
    API (`…/console/api`)."""
    url = dify_url.strip().rstrip("/")
    for suffix in _SUFFIXES:
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
            break
    if not url.startswith(("http://", "https://")) or "://" not in url or url.endswith("://"):
        raise ValueError(f"expected an http(s) URL for Dify, got {dify_url!r}")
    return url


class ConsoleClient:
    """One login session against one Dify. Use as a context manager."""

    def __init__(
        self,
        dify_url: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.root = console_base(dify_url)
        self.console_url = f"{self.root}/console/api"
        self.service_url = f"{self.root}/v1"
        self._http = httpx.Client(
            base_url=self.console_url,
            # Imports of big DSLs and the first call to a cold Dify can be slow.
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _csrf_token(self) -> str | None:
        # The name is `csrf_token`, or `__Host-csrf_token` when Dify runs on https without
        # COOKIE_DOMAIN (README §2): take whatever the server set.
        for cookie in self._http.cookies.jar:
            if cookie.name.endswith("csrf_token") and cookie.value:
                return cookie.value
        return None

    def _call(
        self, method: str, path: str, *, json: Any = None, ok: tuple[int, ...] = (200,)
    ) -> httpx.Response:
        headers = {}
        csrf = self._csrf_token()
        if csrf:
            headers["X-CSRF-Token"] = csrf
        try:
            response = self._http.request(method, path, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise ConsoleError(
                f"Dify's console API at {self.console_url} did not answer in time "
                f"({method} {path})",
                kind="unreachable",
            ) from exc
        except httpx.HTTPError as exc:
            raise ConsoleError(
                f"cannot reach Dify's console API at {self.console_url}: "
                f"{exc.__class__.__name__}: {exc}",
                kind="unreachable",
            ) from exc
        if response.status_code not in ok:
            raise self._error(method, path, response)
        return response

    def _error(self, method: str, path: str, response: httpx.Response) -> ConsoleError:
        status = response.status_code
        try:
            body = msgspec.json.decode(response.content, type=ErrorBody)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return ConsoleError(
                f"{method} {self.console_url}{path} answered HTTP {status} with a body that is "
                "not Dify's console API (is --dify-url the Dify base URL?)",
                status=status,
                kind="not_dify",
            )
        detail = body.text or response.reason_phrase
        return ConsoleError(f"{detail} (HTTP {status})", status=status, kind=body.kind)

    @staticmethod
    def _decode(response: httpx.Response, into: type[Any]) -> Any:
        try:
            return msgspec.json.decode(response.content, type=into)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConsoleError(
                f"unexpected answer from {response.request.url.path}: {exc}", kind="not_dify"
            ) from exc

    # --- setup and session ---------------------------------------------------------------------

    def setup_step(self) -> str:
        """`finished` or `not_started` (01a). Every Dify edition answers it, so a 404 means
        the URL is not a Dify (a common slip: the bridge's own URL)."""
        try:
            return self._decode(self._call("GET", "/setup"), SetupStatus).step
        except ConsoleError as exc:
            if exc.status == 404:
                raise ConsoleError(
                    f"{self.console_url}/setup answered 404: that is not Dify's console API "
                    "(is --dify-url the Dify base URL?)",
                    status=404,
                    kind="not_dify",
                ) from exc
            raise

    def validate_init_password(self, init_password: str) -> None:
        """`POST /init`: needed before setup when the server has INIT_PASSWORD; the signed
        `session` cookie it sets is what `/setup` checks, and the cookie jar keeps it."""
        self._call("POST", "/init", json={"password": init_password}, ok=(200, 201))

    def setup(self, email: str, name: str, password: str) -> None:
        """First-admin setup; unlike login, the password goes in plain text (README §1)."""
        self._call(
            "POST",
            "/setup",
            json={"email": email, "name": name, "password": password, "language": "en-US"},
            ok=(200, 201),
        )

    def login(self, email: str, password: str) -> None:
        encoded = base64.b64encode(password.encode("utf-8")).decode("ascii")
        response = self._call(
            "POST", "/login", json={"email": email, "password": encoded, "remember_me": True}
        )
        try:
            result = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise ConsoleError(
                "the login answer is not JSON: is --dify-url the Dify base URL?", kind="not_dify"
            ) from None
        if isinstance(result, dict) and result.get("result") == "fail":
            # An account in no workspace: 200 with {"result":"fail","data":"..."} (README §2).
            raise ConsoleError(f"login refused: {result.get('data')}", kind="login_failed")
        if self._csrf_token() is None:
            raise ConsoleError(
                "login answered without a csrf_token cookie; is the console API behind a proxy "
                "that drops cookies, or served on https with http in --dify-url?",
                kind="not_dify",
            )

    def logout(self) -> None:
        self._call("POST", "/logout")

    # --- apps ----------------------------------------------------------------------------------

    def app(self, app_id: str) -> AppDetail | None:
        """The app, or None when Dify does not know it (deleted: 09b)."""
        try:
            return self._decode(self._call("GET", f"/apps/{app_id}"), AppDetail)
        except ConsoleError as exc:
            if exc.status == 404:
                return None
            raise

    def import_dsl(self, yaml_content: str, app_id: str | None = None) -> ImportResult:
        """`POST /apps/imports`. A `failed` import is an answer (400 with the import object,
        06a-06g), not an exception; the caller reports its `error`."""
        payload: dict[str, Any] = {"mode": "yaml-content", "yaml_content": yaml_content}
        if app_id:
            payload["app_id"] = app_id
        response = self._call("POST", "/apps/imports", json=payload, ok=(200, 202, 400))
        return self._import_result(response)

    def confirm_import(self, import_id: str) -> ImportResult:
        """Confirm a `pending` import (06d); recorded with no body."""
        return self._import_result(
            self._call("POST", f"/apps/imports/{import_id}/confirm", ok=(200, 400))
        )

    def _import_result(self, response: httpx.Response) -> ImportResult:
        try:
            return msgspec.json.decode(response.content, type=ImportResult)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # 400 in the flask-restx shape (06h invalid_param) rather than an import object.
            raise self._error("POST", response.request.url.path, response) from None

    def publish(self, app_id: str) -> None:
        """Publish the draft workflow; the Service API runs only the published one (07a)."""
        self._call(
            "POST",
            f"/apps/{app_id}/workflows/publish",
            json={"marked_name": "", "marked_comment": ""},
        )

    def api_keys(self, app_id: str) -> list[ApiKey]:
        return self._decode(self._call("GET", f"/apps/{app_id}/api-keys"), ApiKeyList).data

    def create_api_key(self, app_id: str) -> ApiKey:
        return self._decode(self._call("POST", f"/apps/{app_id}/api-keys", ok=(200, 201)), ApiKey)
