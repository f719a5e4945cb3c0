"""The one exception type every layer raises towards the client, rendered OpenAI-shaped."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """An error the client should see as `{"error": {"message", "type", "param", "code"}}`.

    `retryable=False` adds `x-should-retry: false`: both openai SDKs honour it, so a failure that
    will happen again (a node that raises, a bad app config) does not run the same Dify flow
    three times (FastGPT retries twice).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or ("server_error" if status >= 500 else "invalid_request_error")
        self.code = code
        self.param = param
        self.retryable = (
            retryable if retryable is not None else status in (408, 409, 429, 502, 503, 504)
        )
        self.extra_headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if not self.retryable:
            headers["x-should-retry"] = "false"
        return headers


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> BridgeError:
    return BridgeError(400, message, param=param, code=code)


def unauthorized(message: str) -> BridgeError:
    return BridgeError(401, message, code="invalid_api_key")


def model_not_found(model: str) -> BridgeError:
    return BridgeError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
