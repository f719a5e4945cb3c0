"""State and rules of the emulated Dify console (`/console/api`): the admin account, login
sessions with CSRF tokens, DSL imports (incl. pending/confirm), publishing, Service API keys.

Texts and status codes follow the Dify 1.13.2 console recordings (console/01a-10h). Handlers
live in console.py; this module holds no HTTP; the records and error answers are in
console_records.py, the DSL checks of an import in console_dsl.py. Apps imported here are served
by the emulator's Service API as soon as they have a key and (for chatflows/workflows) a
published workflow.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .console_dsl import APP_MODES, failed, import_body, read_dsl
from .console_records import (
    Admin,
    ConsoleApp,
    ConsoleReply,
    Grant,
    PendingImport,
    ServiceKey,
    new_id,
    now,
    restx_error,
    setup_error,
)
from .dsl import GRAPH_MODES, AppSpec, load_app
from .service import Emulator

MAX_KEYS = 10  # per app (08c)
ACCESS_TTL = 3600  # ACCESS_TOKEN_EXPIRE_MINUTES = 60
REFRESH_TTL = 30 * 86400  # REFRESH_TOKEN_EXPIRE_DAYS = 30
PENDING_TTL = 600  # a pending import waits 10 minutes for its confirm
LOGIN_ERROR_LIMIT = 5  # more wrong passwords than this lock the email out
NOT_SETUP = (
    "Dify has not been initialized and installed yet. Please proceed with the initialization "
    "and installation process first."
)
_EMAIL = re.compile(r"^[\w.+-]+@([\w-]+\.)+[\w-]{2,}$")
_PASSWORD = re.compile(r"^(?=.*[a-zA-Z])(?=.*\d).{8,}$")
_KEY_ALPHABET = string.ascii_letters + string.digits


class ConsoleState:
    """One emulated Dify instance's console side, bound to the emulator that serves its apps."""

    def __init__(self, emulator: Emulator, init_password: str | None = None) -> None:
        self.emulator = emulator
        self.init_password = init_password
        self.admin: Admin | None = None
        self.setup_at: str | None = None
        self.init_sessions: set[str] = set()
        self.access: dict[str, Grant] = {}
        self.csrf: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.login_errors: dict[str, int] = {}
        self.pending: dict[str, PendingImport] = {}
        self.apps: dict[str, ConsoleApp] = {}
        # Imported DSLs as files, because the emulator's loader reads files; removed with
        # the state (TemporaryDirectory cleans up when collected or at exit).
        self._dsl_dir = tempfile.TemporaryDirectory(prefix="emulator-console-")
        for key, spec in emulator.apps.items():  # the preloaded apps show in the console too
            self.apps[spec.app_id] = ConsoleApp(
                id=spec.app_id,
                name=spec.name,
                mode=spec.mode,
                description=spec.description,
                workflow_id=spec.workflow_id if spec.is_graph else None,
                published_at=now() if spec.is_graph else None,
                served=spec,
                keys=[ServiceKey(token=key)],
            )

    # --- setup -----------------------------------------------------------------------------

    @property
    def is_set_up(self) -> bool:
        return self.admin is not None

    def require_setup(self) -> None:
        if not self.is_set_up:
            if self.init_password:
                raise restx_error(
                    "not_init_validated",
                    "Init validation has not been completed yet. Please proceed with the init "
                    "validation process first.",
                    401,
                )
            raise restx_error("not_setup", NOT_SETUP, 401)

    def init_status(self, session: str | None) -> str:
        if self.is_set_up or not self.init_password or session in self.init_sessions:
            return "finished"
        return "not_started"

    def validate_init(self, password: object) -> str:
        """`POST /init`: a new session id the caller puts in the `session` cookie."""
        if self.is_set_up:
            raise setup_error("authorization_error", "Forbidden", 403)
        if not isinstance(password, str) or len(password) > 30:
            raise setup_error(
                "validation_error",
                "Validation error for parameter 'payload'",
                422,
                details="Validation error for parameter 'payload'",
            )
        if not self.init_password or not secrets.compare_digest(password, self.init_password):
            raise setup_error("authentication_error", "Unauthorized", 401)
        session = secrets.token_urlsafe(24)
        self.init_sessions.add(session)
        return session

    def setup(self, payload: dict[str, Any], session: str | None) -> None:
        email, name, password = payload.get("email"), payload.get("name"), payload.get("password")
        valid = (
            isinstance(email, str)
            and _EMAIL.match(email)
            and isinstance(name, str)
            and 0 < len(name) <= 30
            and isinstance(password, str)
            and _PASSWORD.match(password)
        )
        if not valid:  # 02b: validation runs before the already-set-up check
            message = "Validation error for parameter 'payload'"
            raise setup_error("validation_error", message, 422, details=message)
        if self.is_set_up:
            raise setup_error("authorization_error", "Forbidden", 403)  # 02a
        if self.init_password and session not in self.init_sessions:
            raise setup_error("authentication_error", "Unauthorized", 401)
        self.admin = Admin(email=str(email).lower(), name=str(name), password=str(password))
        self.setup_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    # --- sessions --------------------------------------------------------------------------

    def login(self, payload: dict[str, Any]) -> tuple[str, str, str]:
        """access, refresh and csrf tokens for the cookies (03c)."""
        self.require_setup()
        assert self.admin is not None
        email = str(payload.get("email") or "").lower()
        if self.login_errors.get(email, 0) > LOGIN_ERROR_LIMIT:
            raise restx_error(
                "email_code_login_limit",
                "Too many incorrect password attempts. Please try again later.",
                429,
            )
        try:  # the web UI base64-encodes the password; plaintext does not decode (03b)
            password = base64.b64decode(str(payload.get("password") or ""), validate=True)
            password_text = password.decode("utf-8")
        except (binascii.Error, ValueError):
            raise restx_error("authentication_failed", "Invalid encrypted data", 401) from None
        if email != self.admin.email or not secrets.compare_digest(
            password_text.encode(), self.admin.password.encode()
        ):
            self.login_errors[email] = self.login_errors.get(email, 0) + 1
            raise restx_error("authentication_failed", "Invalid email or password.", 401)
        self.login_errors.pop(email, None)
        return self._grant(self.admin.id)

    def _grant(self, account_id: str) -> tuple[str, str, str]:
        access, refresh, csrf = (secrets.token_urlsafe(32) for _ in range(3))
        self.access[access] = Grant(account_id, time.time() + ACCESS_TTL)
        self.csrf[csrf] = Grant(account_id, time.time() + ACCESS_TTL)
        self.refresh[refresh] = Grant(account_id, time.time() + REFRESH_TTL)
        return access, refresh, csrf

    def account_of(self, access: str | None) -> str:
        """The account an access token (cookie or Bearer) belongs to; 401 otherwise (04c)."""
        grant = self.access.get(access or "")
        if grant is None or grant.expires_at < time.time():
            raise restx_error("unauthorized", "Invalid Authorization token.", 401)
        return grant.account_id

    def check_csrf(self, account_id: str, header: str | None, cookie: str | None) -> None:
        """Header and cookie both present, equal, and issued to this account (04b, 04e)."""
        grant = self.csrf.get(cookie or "")
        if (
            not header
            or not cookie
            or not secrets.compare_digest(header, cookie)
            or grant is None
            or grant.account_id != account_id
            or grant.expires_at < time.time()
        ):
            raise restx_error("unauthorized", "CSRF token is missing or invalid.", 401)

    def rotate(self, refresh: str | None) -> tuple[str, str, str]:
        if not refresh:
            raise ConsoleReply(401, {"result": "fail", "message": "No refresh token provided"})
        grant = self.refresh.pop(refresh, None)
        if grant is None or grant.expires_at < time.time():
            raise ConsoleReply(401, {"result": "fail", "message": "Invalid refresh token"})
        return self._grant(grant.account_id)

    def logout(self, account_id: str) -> None:
        # Like Dify, only the refresh token goes; access JWTs live until they expire (10g).
        for token in [t for t, g in self.refresh.items() if g.account_id == account_id]:
            del self.refresh[token]

    # --- apps ------------------------------------------------------------------------------

    def app(self, app_id: str, missing: ConsoleReply) -> ConsoleApp:
        found = self.apps.get(app_id)
        if found is None:
            raise missing
        return found

    def list_apps(self, page: int, limit: int, name: str | None, mode: str | None) -> dict:
        apps = sorted(self.apps.values(), key=lambda a: a.created_at, reverse=True)
        if name:
            apps = [a for a in apps if name.lower() in a.name.lower()]
        if mode and mode != "all":
            apps = [a for a in apps if a.mode == mode]
        start = (page - 1) * limit
        author = self.admin.name if self.admin else ""
        return {
            "page": page,
            "limit": limit,
            "total": len(apps),
            "has_more": start + limit < len(apps),
            "data": [a.summary(author) for a in apps[start : start + limit]],
        }

    def delete_app(self, app_id: str) -> None:
        app = self.app(app_id, restx_error("app_not_found", "App not found.", 404))  # 09b
        app.keys.clear()  # its keys stop working at once
        self._serve(app)
        del self.apps[app_id]

    # --- import ----------------------------------------------------------------------------

    def start_import(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mode = payload.get("mode")
        if mode not in ("yaml-content", "yaml-url"):
            raise restx_error("invalid_param", f"Invalid import_mode: {mode}", 400)  # 06h
        import_id = new_id()
        if mode == "yaml-url":
            raise failed(import_id, "The emulator does not fetch yaml_url; send yaml_content")
        text = payload.get("yaml_content")
        if not text or not isinstance(text, str):
            raise failed(import_id, "yaml_content is required when import_mode is yaml-content")
        target = payload.get("app_id")
        return self._import(import_id, text, str(target) if target else None, confirmed=False)

    def confirm_import(self, import_id: str) -> tuple[int, dict[str, Any]]:
        pending = self.pending.pop(import_id, None)
        if pending is None or pending.expires_at < time.time():
            raise failed(import_id, "Import information expired or does not exist")  # 06e
        return self._import(import_id, pending.text, pending.app_id, confirmed=True)

    def _import(
        self, import_id: str, text: str, target: str | None, confirmed: bool
    ) -> tuple[int, dict[str, Any]]:
        version, status, app_data = read_dsl(import_id, text)
        existing = None
        if target:
            existing = self.apps.get(target)
            if existing is None:
                raise failed(import_id, "App not found")
            if existing.mode not in GRAPH_MODES:
                raise failed(import_id, "Only workflow or advanced chat modes can be overwritten")
        if status == "pending" and not confirmed:  # 06c: nothing created until the confirm
            self.pending[import_id] = PendingImport(text, target, time.time() + PENDING_TTL)
            return 202, import_body(import_id, "pending", version=version)
        mode = str(app_data.get("mode") or "")
        if mode not in APP_MODES:
            raise failed(import_id, f"Invalid app mode: {mode or None}")
        app = existing or ConsoleApp(id=new_id(), name="", mode=mode)
        draft = Path(self._dsl_dir.name) / f"{app.id}.yml"
        draft.write_text(text, encoding="utf-8")
        try:
            spec = self._spec(app, draft)
        except Exception as exc:  # the emulator cannot run this DSL: say why, as Dify would
            raise failed(import_id, f"{type(exc).__name__}: {exc}") from None
        app.name = str(app_data.get("name") or app.name or "Untitled")
        app.mode = mode
        app.description = str(app_data.get("description") or "")
        app.icon = str(app_data.get("icon") or app.icon)
        app.icon_background = str(app_data.get("icon_background") or app.icon_background)
        app.draft = draft
        app.updated_at = now()
        if mode not in GRAPH_MODES:
            app.served = spec  # chat/agent/completion apps run their config, no publish step
        self.apps[app.id] = app
        self._serve(app)
        final = "completed" if confirmed else status  # 06d: a confirmed import is completed
        return 200, import_body(import_id, final, app.id, mode, version)

    def _spec(self, app: ConsoleApp, draft: Path) -> AppSpec:
        spec = load_app(draft)
        spec.app_id = app.id
        # Conversations are kept per `spec.key`: one stable id per app, whatever its keys.
        spec.key = f"console-app-{app.id}"
        return spec

    def publish(self, app_id: str, path: str) -> dict[str, Any]:
        hint = (
            f" You have requested this URI [{path}] but did you mean "
            "/console/api/apps/<uuid:app_id>/workflows/publish or "
            "/console/api/rag/pipelines/<uuid:pipeline_id>/workflows/publish ?"
        )
        app = self.app(app_id, restx_error("app_not_found", "App not found." + hint, 404))
        if app.mode not in GRAPH_MODES:  # 07c
            raise restx_error(
                "app_not_found",
                "App mode is not in the supported list: {'advanced-chat', 'workflow'}." + hint,
                404,
            )
        if app.draft is not None:
            app.served = self._spec(app, app.draft)
        assert app.served is not None
        app.workflow_id = new_id()
        app.served.workflow_id = app.workflow_id
        app.published_at = app.updated_at = now()
        self._serve(app)
        return {"result": "success", "created_at": app.published_at}

    # --- Service API keys ------------------------------------------------------------------

    def keys_of(self, app_id: str, path: str) -> ConsoleApp:
        hint = (
            f" You have requested this URI [{path}] but did you mean "
            "/console/api/apps/<uuid:resource_id>/api-keys ?"
        )
        return self.app(app_id, ConsoleReply(404, {"message": "App not found." + hint}))  # 09d

    def create_key(self, app_id: str, path: str) -> ServiceKey:
        app = self.keys_of(app_id, path)
        if len(app.keys) >= MAX_KEYS:
            raise ConsoleReply(  # 08c: no code/status keys
                400,
                {
                    "custom": "max_keys_exceeded",
                    "message": f"Cannot create more than {MAX_KEYS} API keys for this resource "
                    "type.",
                },
            )
        key = ServiceKey(token="app-" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(24)))
        app.keys.append(key)
        self._serve(app)
        return key

    def delete_key(self, app_id: str, key_id: str, path: str) -> None:
        app = self.keys_of(app_id, path)
        key = next((k for k in app.keys if k.id == key_id), None)
        if key is None:
            raise ConsoleReply(404, {"message": "API key not found"})  # 08e
        app.keys.remove(key)
        self.emulator.apps.pop(key.token, None)

    def _serve(self, app: ConsoleApp) -> None:
        """Point each of the app's keys at what the Service API should run: the published
        workflow (graph apps), the app's config (others), or nothing yet (unpublished)."""
        for token in [t for t, s in self.emulator.apps.items() if s.app_id == app.id]:
            del self.emulator.apps[token]
        if app.served is None:
            return
        for key in app.keys:
            self.emulator.apps[key.token] = app.served
