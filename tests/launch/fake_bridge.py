"""Stand-in for `dify-bridge` in the launcher's unit tests: `serve --port N` listens on
127.0.0.1:N, answers 200 to every GET, and has a child of its own (a sleeping Python) that only
a stop of the whole process group reaches. FAKE_BRIDGE_MODE=exit3 exits with 3 at once.
FAKE_BRIDGE_RECORD=FILE gets one JSON line: pid, child pid, arguments, BRIDGE_API_KEYS and
DIFY_API_URL as the bridge saw them."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    args = sys.argv[1:]
    if os.environ.get("FAKE_BRIDGE_MODE") == "exit3":
        print("fake bridge: failing on purpose", file=sys.stderr)
        return 3
    assert args[0] == "serve", args
    port = int(args[args.index("--port") + 1])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if os.environ.get("FAKE_BRIDGE_RECORD"):
        record = {
            "pid": os.getpid(),
            "child": child.pid,
            "args": args,
            "keys": os.environ.get("BRIDGE_API_KEYS"),
            "dify": os.environ.get("DIFY_API_URL"),
        }
        with open(os.environ["FAKE_BRIDGE_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
