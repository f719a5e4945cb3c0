"""The one error of the launcher: a message for the user, and `dify-bridge start` exits 1."""

from __future__ import annotations


class LaunchError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
