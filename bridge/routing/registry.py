"""Who is calling and which Dify app serves the model they asked for.

Two ways in, both first-class (DESIGN.md): *managed* — the client holds a bridge key
(`BRIDGE_API_KEYS`) and the model name picks an app whose Dify key stays on the server; and
*passthrough* — the client's own `Bearer app-…` (or bare `app-…`) is the Dify app key.
"""

from __future__ import annotations

import hmac

import msgspec

from bridge.dify.client import DifyTarget
from bridge.errors import BridgeError, model_not_found, unauthorized
from bridge.routing.grants import granted
from bridge.settings import ModelConfig, Settings

EMULATOR_PATH = "/_emulator/v1"
# Longest credential accepted. Real keys are ~30-70 characters (`sk-…`, `app-…`); anything
# much longer is refused here, before it reaches the Dify API (a 64 KB key used to come back
# from Dify as a retryable 502).
MAX_CREDENTIAL_LENGTH = 512
# Longest model name accepted. Real ids are short (`gpt-4o-mini`, `deepseek-r1:70b`, a Dify
# app's name); the name is echoed in every chunk and logged, so a 1 MB "model" must be a 400,
# not a 1 MB access line (issue 17).
MAX_MODEL_LENGTH = 256


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """The resolved target of one request."""

    model: str  # the id the client asked for, echoed back in responses
    config: ModelConfig
    target: DifyTarget
    managed: bool

    def __repr__(self) -> str:
        return f"ModelRoute(model={self.model!r}, managed={self.managed}, target={self.target!r})"


def credential_from_header(authorization: str | None) -> str | None:
    """`Bearer <key>`, or a bare key (seen in the wild). Empty → None.

    Too long → 401; not one printable ASCII token (spaces inside, control or non-ASCII
    characters) → 400. Neither is retryable, and neither reaches Dify.
    """
    if not authorization:
        return None
    if len(authorization) > MAX_CREDENTIAL_LENGTH + len("Bearer "):
        raise unauthorized(
            f"The API key is too long (over {MAX_CREDENTIAL_LENGTH} characters); "
            "check the Authorization header."
        )
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    if value and not _is_token(value):
        raise BridgeError(
            400,
            "Malformed Authorization header: expected `Bearer <key>`, one key of printable "
            "ASCII characters.",
            code="invalid_authorization_header",
            retryable=False,
        )
    return value or None


def valid_model_name(model: str) -> bool:
    """Not over MAX_MODEL_LENGTH and free of control characters (no real id has them)."""
    return len(model) <= MAX_MODEL_LENGTH and model.isprintable()


def check_model_name(model: str) -> None:
    """400 (param `model`) for a name no client means; the message never echoes it."""
    if len(model) > MAX_MODEL_LENGTH:
        raise BridgeError(
            400,
            f"The model name is too long ({len(model)} characters; at most {MAX_MODEL_LENGTH}).",
            param="model",
            code="invalid_model_name",
            retryable=False,
        )
    if not model.isprintable():
        raise BridgeError(
            400,
            "The model name contains control characters.",
            param="model",
            code="invalid_model_name",
            retryable=False,
        )


def _is_token(value: str) -> bool:
    return value.isascii() and all(33 <= ord(char) <= 126 for char in value)


def _matches_any(credential: str, keys: list[str]) -> bool:
    # Constant time per key, and every key is compared, so timing says nothing about which.
    found = False
    for key in keys:
        found |= hmac.compare_digest(credential.encode(), key.encode())
    return found


class ModelRegistry:
    """Managed models from the settings, plus the passthrough rules."""

    def __init__(self, settings: Settings, dify_base_url: str) -> None:
        self.settings = settings
        self.base_url = dify_base_url
        models = list(settings.models)
        if settings.dify_api_key and not any(m.id == settings.model_name for m in models):
            models.insert(0, ModelConfig(id=settings.model_name, app_key=settings.dify_api_key))
        self.models: dict[str, ModelConfig] = {m.id: m for m in models}
        # The server's own Dify keys: never accepted from a client (a leaked key must not
        # work through the bridge, and the bridge must not confirm that it is one).
        self._server_keys = [m.app_key for m in models if m.app_key]
        self._server_keys += [u.app_key for m in models for u in (m.upstreams or [])[1:]]
        if settings.dify_api_key:
            self._server_keys.append(settings.dify_api_key)
        self._configured = dict(self.models)
        # Keys issued by the operator console (bridge.routing.grants): once one exists, the
        # managed models need a key, as with BRIDGE_API_KEYS.
        self.keys_issued = False

    def set_saved_models(self, saved: list[ModelConfig]) -> None:
        """Models saved in the operator console, beside the configured ones (which win a
        clash); swapped in whole, so a request sees the old set or the new one."""
        models = dict(self._configured)
        for model in saved:
            models.setdefault(model.id, model)
        keys = [m.app_key for m in models.values() if m.app_key]
        self._server_keys = list(dict.fromkeys([*self._server_keys, *keys]))
        self.models = models

    @property
    def managed_ids(self) -> list[str]:
        return [m.id for m in self.models.values() if m.app_key]

    def listed_ids(self) -> list[str]:
        """What `/v1/models` shows: managed models, else the single passthrough name."""
        ids = self.managed_ids
        if not ids and self.settings.passthrough:
            ids = [self.settings.model_name]
        return ids + [alias for alias in self.settings.aliases if alias not in ids]

    def _canonical(self, model: str) -> str:
        return self.settings.aliases.get(model, model)

    def authenticate(self, credential: str | None) -> bool:
        """True: a managed client. False: passthrough. Raises 401 otherwise."""
        keys = self.settings.api_keys
        if credential and keys and _matches_any(credential, keys):
            return True
        if granted(credential) is not None:
            return True
        if credential and self._server_keys and _matches_any(credential, self._server_keys):
            raise unauthorized("Incorrect API key provided.")
        if credential and self.settings.passthrough and credential.startswith("app-"):
            return False
        if not keys and not self.keys_issued and self.managed_ids:
            # No bridge keys configured: managed models are open (demo / private network).
            return True
        if credential is None:
            raise unauthorized(
                "Missing API key: send `Authorization: Bearer <key>` (a bridge key, or your "
                "Dify app key `app-…` in passthrough mode)."
            )
        raise unauthorized("Incorrect API key provided.")

    def resolve(self, model: str, credential: str | None) -> ModelRoute:
        managed = self.authenticate(credential)
        check_model_name(model)
        name = self._canonical(model)
        config = self.models.get(name)
        grant = granted(credential)
        if grant is not None and not grant.allows(name):
            raise model_not_found(model)
        if managed:
            if config is None or not config.app_key:
                default = self.settings.default_model
                if default and default in self.models:
                    config = self.models[default]
                else:
                    raise model_not_found(model)
            assert config.app_key is not None
            return ModelRoute(
                model=model,
                config=config,
                target=DifyTarget(config.dify_url or self.base_url, config.app_key),
                managed=True,
            )
        assert credential is not None
        # Passthrough: any model id works (FastGPT sends whatever the admin typed); a configured
        # model of that name lends its options, never its key.
        options = config or ModelConfig(id=name)
        options = msgspec.structs.replace(options, app_key=None)
        return ModelRoute(
            model=model,
            config=options,
            target=DifyTarget(options.dify_url or self.base_url, credential),
            managed=False,
        )

    def model_reader(self, credential: str | None) -> bool | None:
        """Who reads the model list (`/v1/models`, the index page), like OpenAI: once bridge
        keys exist, a caller who may chat (bridge key → True, passthrough `app-…` key when
        passthrough is on → False); anyone else gets the 401 a chat would get. Without bridge
        keys the list is open: None for a caller who brought no usable key."""
        if self.settings.api_keys or self.keys_issued:
            return self.authenticate(credential)
        try:
            return self.authenticate(credential)
        except BridgeError:
            return None

    def answers_to(self, model: str, reader: bool | None) -> bool:
        """Whether `GET /v1/models/{model}` says the model exists for this reader: a
        configured model, an alias or the listed passthrough name; and for a passthrough
        caller (`reader is False`) any well-formed name, since the caller's own Dify app
        answers chats under whatever name they send. A default model catches unknown names
        for chats, but does not make them exist."""
        if not valid_model_name(model):
            return False
        return self.known(model) or reader is False

    def may_read_metrics(self, credential: str | None) -> bool:
        """`/metrics` is open only while neither bridge keys nor a metrics key exist."""
        keys = list(self.settings.api_keys)
        if self.settings.metrics_key:
            keys.append(self.settings.metrics_key)
        if not keys:
            return True
        return credential is not None and _matches_any(credential, keys)

    def known(self, model: str) -> bool:
        name = self._canonical(model)
        return name in self.listed_ids() or name in self.models
