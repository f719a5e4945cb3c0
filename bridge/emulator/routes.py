"""The emulator's Service API routes, by family: generation and stop (generation_routes.py),
the app's description, conversations and messages (app_routes.py), files (file_routes.py), the
test journal (journal.py), and the console API (console.py)."""

from __future__ import annotations

from .app_routes import (
    conversations,
    delete_conversation,
    index,
    info,
    messages,
    meta,
    parameters,
    site,
)
from .console import CONSOLE_ROUTER
from .file_routes import tool_file, upload_file
from .generation_routes import (
    chat_messages,
    completion_messages,
    stop_chat,
    stop_completion,
    stop_workflow,
    workflows_run,
    workflows_run_pinned,
)
from .journal import clear_journal, get_file, get_journal

ROUTES = [
    chat_messages,
    completion_messages,
    workflows_run,
    workflows_run_pinned,
    stop_chat,
    stop_completion,
    stop_workflow,
    parameters,
    index,
    info,
    meta,
    site,
    conversations,
    messages,
    delete_conversation,
    upload_file,
    get_journal,
    clear_journal,
    get_file,
    tool_file,
    CONSOLE_ROUTER,  # /console/api: console.py
]
