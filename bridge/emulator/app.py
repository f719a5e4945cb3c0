"""`create_emulator_app(config)`: the Litestar app that plays a Dify Service API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from litestar import Litestar
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from .dify_http import dify_headers, method_not_allowed_handler, not_found_handler
from .dsl import AppSpec, load_apps
from .errors import DifyError
from .handlers import dify_error_handler
from .journal import record_request
from .llm import FakeModelTiming
from .routes import ROUTES
from .run import RunSettings
from .service import Emulator
from .store import EmulatorStore
from .versions import DEFAULT_VERSION, DifyProfile, profile_for


@dataclass
class EmulatorConfig:
    dsl_paths: list[Path] = field(default_factory=list)
    dsl_dir: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)  # app name → API key
    ping_interval: float = 10.0  # seconds of silence before an `event: ping`
    code_timeout: float = 30.0  # Code node time limit
    idle_timeout: float = 300.0  # how long the 13a "silent hang" lasts
    # How long a streamed chatflow/workflow whose inputs were refused stays open after its one
    # ping (07b; measured ~300 s on Dify 1.13.2). Separate from idle_timeout so tests can
    # shorten one without the other.
    start_failure_hold: float = 300.0
    llm_slow_interval: float = 1.0  # SLOW: seconds between chunks
    llm_wait_before_first: float = 15.0  # WAIT15: seconds before the first chunk
    http_timeout: float = 30.0  # HTTP Request node
    # Agent workflow tools (46d): tool name → name of the loaded workflow app that runs it.
    # Dify keeps this binding in its database, so a DSL alone cannot tell.
    workflow_tools: dict[str, str] = field(default_factory=dict)
    # The Dify release to play (versions.py): any version string, mapped to the nearest profile
    # at or below it; garbage or a release older than 0.15.3 is a ValueError.
    dify_version: str = DEFAULT_VERSION
    # ≤1.10 keeps a new conversation's stream open while its title is generated (an LLM call):
    # seconds the emulator holds it (no effect on profiles ≥1.11).
    title_wait: float = 3.0

    @property
    def profile(self) -> DifyProfile:
        return profile_for(self.dify_version)


def create_emulator_app(config: EmulatorConfig | None = None) -> Litestar:
    config = config or EmulatorConfig()
    profile = config.profile  # fails early on a bad version
    apps = load_apps(config.dsl_paths, config.dsl_dir, config.keys)
    settings = RunSettings(
        code_timeout=config.code_timeout,
        model=FakeModelTiming(
            slow_interval=config.llm_slow_interval,
            wait_before_first=config.llm_wait_before_first,
        ),
        http_timeout=config.http_timeout,
        workflow_tools=_workflow_tools(config.workflow_tools, apps),
        profile=profile,
    )
    emulator = Emulator(
        apps=apps,
        store=EmulatorStore(),
        settings=settings,
        ping_interval=config.ping_interval,
        idle_timeout=config.idle_timeout,
        start_failure_hold=config.start_failure_hold,
        title_wait=config.title_wait,
    )
    app = Litestar(
        # structlog does the logging; Litestar's own config would start a queue-listener
        # thread per app (tests build hundreds of apps).
        logging_config=None,
        route_handlers=ROUTES,
        exception_handlers={
            DifyError: dify_error_handler,
            NotFoundException: not_found_handler,
            MethodNotAllowedException: method_not_allowed_handler,
        },
        middleware=[dify_headers(profile.version)],
        before_request=record_request,
        openapi_config=None,
    )
    app.state.emulator = emulator
    return app


def _workflow_tools(names: dict[str, str], apps: dict[str, AppSpec]) -> dict[str, AppSpec]:
    by_name = {spec.name: spec for spec in apps.values() if spec.mode == "workflow"}
    missing = sorted(set(names.values()) - set(by_name))
    if missing:
        raise ValueError(f"workflow_tools name apps that are not loaded workflows: {missing}")
    return {tool: by_name[app_name] for tool, app_name in names.items()}


def emulator_apps(app: Litestar) -> dict[str, str]:
    """Loaded apps: name → API key."""
    return {spec.name: key for key, spec in app.state.emulator.apps.items()}


def emulator_of(app: Litestar) -> Emulator:
    return app.state.emulator
