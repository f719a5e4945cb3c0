"""The provisioning steps: log in (setting up a fresh Dify first), then for each DSL file import
→ confirm → publish → Service API key → config entry, idempotently.

Idempotence rests on the config: each provisioned model records `dify_app_id` and
`dify_dsl_digest`. A second run finds the app by id, sees the same digest and reuses the key
the config holds, so it creates nothing. A changed DSL is re-imported into the same app and
published again. The config is saved after every step that created something in Dify, so a
failure part-way leaves a record a re-run continues from instead of duplicating the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as cfg
from .console import GRAPH_MODES, ConsoleClient, ConsoleError
from .dsl import DslFile, DslReadError, read_dsl
from .wire import ImportResult

# Exit codes: 2 = the command line or a local file is wrong; 1 = Dify refused a step;
# 3 = Dify could not be reached (or is not Dify).
EXIT_USAGE = 2
EXIT_DIFY = 1
EXIT_UNREACHABLE = 3


class ProvisionError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_DIFY) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str
    name: str = "admin"  # only used when setting up a fresh instance
    init_password: str | None = None

    def __repr__(self) -> str:  # never show the passwords, not even in a traceback
        return f"Credentials(email={self.email!r}, password=<redacted>)"


@dataclass
class Provisioned:
    model: str
    app_name: str
    app_mode: str
    app_id: str
    app_key: str
    dsl: Path
    actions: list[str] = field(default_factory=list)  # what this run changed in Dify
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    models: list[Provisioned]
    config_path: Path
    config: dict[str, Any]
    new_bridge_key: bool
    setup_done: bool  # this run set up a fresh Dify


Echo = Callable[[str], None]


def provision(
    dsl_paths: list[Path],
    model_names: list[str],
    dify_url: str,
    config_path: Path,
    credentials: Credentials,
    *,
    client_factory: Callable[[str], ConsoleClient] = ConsoleClient,
    progress: Echo = lambda _line: None,
) -> Outcome:
    if len(model_names) > len(dsl_paths):
        raise ProvisionError(
            f"{len(model_names)} --model names for {len(dsl_paths)} DSL file(s): give at most "
            "one --model per DSL file, in the same order",
            EXIT_USAGE,
        )
    try:
        dsls = [read_dsl(p) for p in dsl_paths]
        config = cfg.read_config(config_path)
    except (DslReadError, cfg.ConfigFileError) as exc:
        raise ProvisionError(str(exc), EXIT_USAGE) from exc
    names = [
        model_names[i] if i < len(model_names) else (d.app_name or d.path.stem)
        for i, d in enumerate(dsls)
    ]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProvisionError(
            f"model name {duplicates[0]!r} is used for more than one DSL file; "
            "give each file its own --model",
            EXIT_USAGE,
        )
    try:
        client = client_factory(dify_url)
    except ValueError as exc:
        raise ProvisionError(f"--dify-url: {exc}", EXIT_USAGE) from exc
    done: list[Provisioned] = []
    new_key = False

    def save() -> None:
        nonlocal new_key
        # The bridge key goes in with the first write, so no written config is ever open.
        new_key = new_key or cfg.ensure_bridge_key(config) is not None
        try:
            cfg.write_config(config_path, config)
        except OSError as exc:
            raise ProvisionError(
                f"cannot write config file {config_path}: {exc.strerror or exc}", EXIT_USAGE
            ) from exc

    with client:
        try:
            setup_done = _log_in(client, credentials, progress)
            for dsl, name in zip(dsls, names, strict=True):
                done.append(_provision_one(client, dsl, name, config, save, progress))
        except ConsoleError as exc:
            raise _explain(exc) from exc
        save()
        with contextlib.suppress(ConsoleError):
            client.logout()  # else the session ends with the access token's expiry anyway
    return Outcome(done, config_path, config, new_key, setup_done)


def _log_in(client: ConsoleClient, creds: Credentials, progress: Echo) -> bool:
    setup_done = False
    if client.setup_step() != "finished":
        progress(f"Dify at {client.root} is not set up yet: creating the admin {creds.email}")
        if creds.init_password:
            try:
                client.validate_init_password(creds.init_password)
            except ConsoleError as exc:
                raise ProvisionError(
                    f"Dify refused DIFY_INIT_PASSWORD ({exc.message}); use the INIT_PASSWORD the "
                    "Dify server was started with"
                ) from exc
        try:
            client.setup(creds.email, creds.name, creds.password)
        except ConsoleError as exc:
            raise ProvisionError(_setup_problem(exc)) from exc
        setup_done = True
    try:
        client.login(creds.email, creds.password)
    except ConsoleError as exc:
        if exc.kind in ("unreachable", "not_dify"):
            raise
        if exc.status == 429 or exc.kind == "email_code_login_limit":
            raise ProvisionError(
                f"Dify locked the admin login for {creds.email} after too many wrong passwords "
                f"({exc.message}); wait for the lock-out to end (LOGIN_LOCKOUT_DURATION, default "
                "a day) or clear it in Dify's Redis"
            ) from exc
        if exc.kind == "not_setup" or exc.kind == "not_init_validated":
            raise ProvisionError(
                f"Dify is not set up ({exc.message}); set DIFY_INIT_PASSWORD if the server has "
                "INIT_PASSWORD"
            ) from exc
        raise ProvisionError(
            f"Dify refused the admin login for {creds.email}: {exc.message}; check "
            "DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD"
        ) from exc
    return setup_done


def _setup_problem(exc: ConsoleError) -> str:
    if exc.status == 401:
        return (
            "Dify asks for its init password before the first-admin setup: set "
            "DIFY_INIT_PASSWORD to the server's INIT_PASSWORD"
        )
    if exc.status == 422:
        return (
            "Dify rejected the first-admin setup: the email must be valid, the name at most 30 "
            "characters and the password at least 8 characters with a letter and a digit"
        )
    if exc.status == 403:
        return "Dify refused the first-admin setup: it is already set up (log in instead)"
    return f"the first-admin setup failed: {exc.message}"


def _explain(exc: ConsoleError) -> ProvisionError:
    if exc.kind in ("unreachable", "not_dify"):
        return ProvisionError(exc.message, EXIT_UNREACHABLE)
    return ProvisionError(f"Dify console API: {exc.message}")


def _provision_one(
    client: ConsoleClient,
    dsl: DslFile,
    model: str,
    config: dict[str, Any],
    save: Callable[[], None],
    progress: Echo,
) -> Provisioned:
    entry = cfg.find_model(config, model)
    actions: list[str] = []
    warnings: list[str] = []
    app = None
    recorded_id = entry.get("dify_app_id") if entry else None
    if recorded_id:
        app = client.app(str(recorded_id))
        if app is None:
            warnings.append(
                f"app {recorded_id} recorded for model {model} is gone from Dify; imported anew"
            )
    reimport = app is not None and entry is not None and entry.get("dify_dsl_digest") != dsl.digest
    if app is not None and reimport and app.mode not in GRAPH_MODES:
        raise ProvisionError(
            f"{dsl.path} changed since model {model} was provisioned, but Dify can overwrite "
            f"only workflow and chatflow apps, and {app.name} is a {app.mode} app. Delete the "
            f"app in Dify (or remove dify_app_id from model {model} in the config) and run "
            "provision again to import it afresh"
        )
    if app is None or reimport:
        progress(f"{dsl.path.name}: {'re-importing into app ' + app.id if app else 'importing'}")
        result = _import(client, dsl, app.id if app else None, warnings)
        app_id = str(result.app_id)
        actions.append("re-imported" if app else "imported")
        entry = cfg.model_entry(config, model)
        entry["dify_app_id"] = app_id
        # A graph app counts as provisioned from this DSL only once it is published.
        if result.app_mode in GRAPH_MODES:
            entry.pop("dify_dsl_digest", None)
        else:
            entry["dify_dsl_digest"] = dsl.digest
        cfg.point_at_dify(config, entry, client.service_url)
        save()
        app = client.app(app_id)
        if app is None:
            raise ProvisionError(f"Dify reported app {app_id} imported but does not show it")
    entry = cfg.model_entry(config, model)
    if app.mode in GRAPH_MODES and (actions or app.workflow is None):
        progress(f"{dsl.path.name}: publishing the workflow of {app.name}")
        try:
            client.publish(app.id)
        except ConsoleError as exc:
            if exc.kind in ("unreachable", "not_dify"):
                raise
            raise ProvisionError(
                f"Dify could not publish {app.name} ({app.id}): {exc.message}; open the app in "
                "Dify's studio, fix what its checklist shows, then run provision again"
            ) from exc
        actions.append("published")
    entry["dify_dsl_digest"] = dsl.digest
    key = _service_key(client, app.id, app.name, entry.get("app_key"), actions)
    entry["app_key"] = key
    entry.setdefault("mode", "auto")
    cfg.point_at_dify(config, entry, client.service_url)
    save()
    return Provisioned(
        model=model,
        app_name=app.name,
        app_mode=app.mode,
        app_id=app.id,
        app_key=key,
        dsl=dsl.path,
        actions=actions,
        warnings=warnings,
    )


def _import(
    client: ConsoleClient, dsl: DslFile, app_id: str | None, warnings: list[str]
) -> ImportResult:
    result = client.import_dsl(dsl.text, app_id=app_id)
    if result.status == "pending":
        # A DSL newer than this Dify (06c): Dify wants a confirmation, as the web UI asks.
        warnings.append(
            f"{dsl.path.name}: DSL version {result.imported_dsl_version} is newer than this "
            f"Dify's {result.current_dsl_version}; import confirmed, check the app in Dify"
        )
        result = client.confirm_import(result.id)
    elif result.status == "completed-with-warnings":
        warnings.append(
            f"{dsl.path.name}: DSL version {result.imported_dsl_version} is older than this "
            f"Dify's {result.current_dsl_version}; Dify upgraded it on import"
        )
    if result.status == "failed" or not result.app_id:
        raise ProvisionError(
            f"Dify rejected {dsl.path}: {result.error or 'import failed (no reason given)'}"
        )
    return result


def _service_key(
    client: ConsoleClient, app_id: str, app_name: str, current: object, actions: list[str]
) -> str:
    """The config's key when Dify still has it, else a new one. Keys someone else made are
    left alone: the bridge owns exactly the key it recorded."""
    if (
        isinstance(current, str)
        and current
        and any(k.token == current for k in client.api_keys(app_id))
    ):
        return current
    try:
        created = client.create_api_key(app_id)
    except ConsoleError as exc:
        if exc.kind == "max_keys_exceeded":
            raise ProvisionError(
                f"app {app_name} ({app_id}) already has the most Service API keys Dify allows "
                f"({exc.message}). Free one: in Dify open the app → API Access → API Key and "
                f"delete a key nobody uses (or DELETE /console/api/apps/{app_id}/api-keys/<key "
                "id>), then run provision again"
            ) from exc
        raise
    actions.append("key created")
    return created.token
