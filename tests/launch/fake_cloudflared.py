"""Stand-in for cloudflared in the launcher's unit tests (Python, so it runs wherever the
tests do). FAKE_CLOUDFLARED_MODE: "url" (default) prints a quick-tunnel banner shaped like the
real one on stderr and keeps running; "hang" prints nothing and keeps running; "die" prints
cloudflared's error line for an unreachable api.trycloudflare.com and exits 1; "api" prints
only that error line and keeps running. While running it has a child of its own (a sleeping
Python), which only a stop of the whole process group reaches. FAKE_CLOUDFLARED_RECORD=FILE
gets one JSON line: its pid, its process group, its child's pid and its arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def say(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {line}", file=sys.stderr, flush=True)


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        print("cloudflared version 2099.1.0 (fake for tests)")
        return 0
    mode = os.environ.get("FAKE_CLOUDFLARED_MODE", "url")
    unreachable = (
        'ERR failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": '
        "dial tcp: lookup api.trycloudflare.com: no such host"
    )
    if mode == "die":
        say(unreachable)
        return 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if os.environ.get("FAKE_CLOUDFLARED_RECORD"):
        pgid = os.getpgid(0) if hasattr(os, "getpgid") else None
        record = {"pid": os.getpid(), "pgid": pgid, "child": child.pid, "args": sys.argv[1:]}
        with open(os.environ["FAKE_CLOUDFLARED_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
    if mode == "api":
        say(unreachable)
    elif mode == "url":
        say("INF Requesting new quick Tunnel on trycloudflare.com...")
        say("INF +" + "-" * 92 + "+")
        say(
            "INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |"
        )
        say("INF |  https://some-words-here.trycloudflare.com" + " " * 49 + "|")
        say("INF +" + "-" * 92 + "+")
    time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
