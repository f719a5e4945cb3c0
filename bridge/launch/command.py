"""The `dify-bridge start` click command: options and help; the work is in start.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

_ORDER = "dify_bridge.start.order"
_AFTER_DASHES = "dify_bridge.start.after_dashes"

ENVIRONMENT = """\b
Environment (besides the bridge's own, see docker/README.md):
  BRIDGE_HOST, BRIDGE_PORT, BRIDGE_CONFIG   defaults of --host, --port, --config
  BRIDGE_START_TIMEOUT     seconds to wait for the bridge to listen (default 60)
  BRIDGE_TUNNEL_TIMEOUT    seconds to wait for the trycloudflare URL (default 60)
  BRIDGE_STOP_GRACE        seconds between SIGTERM and SIGKILL on shutdown (default 10)
  BRIDGE_CLOUDFLARED       path of a cloudflared binary to use
  BRIDGE_CLOUDFLARED_VERSION  release to download when cloudflared is missing
                           (default latest)
  BRIDGE_CLOUDFLARED_URL   download cloudflared from this URL instead of its GitHub
                           release (a mirror); still checked against the SHA-256 below
  BRIDGE_CLOUDFLARED_SHA256   the SHA-256 the downloaded binary must have (default:
                           the one the GitHub release publishes; a download without
                           a published or given SHA-256 is refused)
  BRIDGE_CLOUDFLARED_RELEASE_URL  release data to read that SHA-256 from (default:
                           api.github.com's cloudflare/cloudflared release)
  BRIDGE_DIFY_VERSION      Dify release for --with-dify (default 1.13.2)
  BRIDGE_DIFY_PORT         host port of Dify's nginx for --with-dify (default 80)
  BRIDGE_DIFY_TIMEOUT      seconds to wait for that Dify to answer (default 300)
  BRIDGE_DATA_DIR          where --tunnel keeps its generated key (default: ./data,
                           next to the default SQLite store)
  DIFY_ADMIN_EMAIL, DIFY_ADMIN_PASSWORD  Dify admin login for --dsl (a fresh Dify is
                           set up with them); DIFY_INIT_PASSWORD if the Dify server
                           has INIT_PASSWORD
"""


class _Port(click.ParamType):
    name = "PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        # The messages startup.sh always gave (and its tests and users know).
        text = str(value).strip()
        if not text.isdigit():
            raise click.UsageError(f"--port must be a number, got '{text}'", ctx)
        if not 1 <= int(text) <= 65535:
            raise click.UsageError(f"--port must be 1-65535, got {text}", ctx)
        return int(text)


class _StartCommand(click.Command):
    """Remembers the order of --dsl and --model on the command line (click keeps only each
    option's values), so a --model belongs to the --dsl right before it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # startup.sh's wording for the two mistakes people make most.
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise click.UsageError(f"unknown option: {exc.option_name} (see --help)", ctx) from exc
        except click.BadOptionUsage as exc:
            if "requires" not in exc.message:  # "Option '--x' requires an argument."
                raise
            raise click.UsageError(f"{exc.option_name} needs a value (see --help)", ctx) from exc

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_recording(args: list[str]) -> Any:
            ctx.meta[_AFTER_DASHES] = args[args.index("--") + 1 :] if "--" in args else []
            opts, rest, order = parse(args=args)
            ctx.meta[_ORDER] = [p.name for p in order if p.name in ("dsl", "model")]
            return opts, rest, order

        parser.parse_args = parse_recording  # type: ignore[method-assign]
        return parser


def _check_pairs(ctx: click.Context, models: tuple[str, ...]) -> None:
    dsl_seen = model_seen = 0
    for name in ctx.meta.get(_ORDER, []):
        if name == "dsl":
            dsl_seen += 1
            continue
        model = models[model_seen]
        model_seen += 1
        if model_seen > dsl_seen:
            raise click.UsageError(f"--model {model} needs a --dsl FILE before it (see --help)")
        if model_seen != dsl_seen:
            raise click.UsageError(
                f"--model {model}: give each --dsl its --model right after it, or leave the "
                "later ones without"
            )


@click.command(
    "start",
    cls=_StartCommand,
    epilog=ENVIRONMENT,
    context_settings={"max_content_width": 100},
)
@click.option("--host", envvar="BRIDGE_HOST", default="127.0.0.1", show_default=True,
              help="Address to listen on.")  # fmt: skip
@click.option("--port", envvar="BRIDGE_PORT", type=_Port(), default=8000,
              show_default=True, help="Port to listen on.")  # fmt: skip
@click.option("--config", envvar="BRIDGE_CONFIG", type=click.Path(dir_okay=False),
              help="Bridge YAML config.")  # fmt: skip
@click.option("--dsl", "dsl", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Provision this Dify DSL file into the Dify at DIFY_API_URL first (import, "
              "publish, API key; needs DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD), write the config "
              "(--config, else ~/.config/dify-bridge/bridge.yaml) and serve it. "
              "Repeatable.")  # fmt: skip
@click.option("--model", "model", multiple=True, metavar="NAME",
              help="Model name for the --dsl given right before it "
              "(default: the app's name).")  # fmt: skip
@click.option("--tunnel", is_flag=True,
              help="Also start a cloudflared quick tunnel and print what to paste into FastGPT. "
              "A public URL is never open: without BRIDGE_API_KEYS a key is generated (kept in "
              "$BRIDGE_DATA_DIR/tunnel-api-key, mode 0600) and required.")  # fmt: skip
@click.option("--with-dify", is_flag=True,
              help="Also start the official Dify docker compose stack (needs a Docker engine) "
              "and point the bridge at it; with DIFY_ADMIN_EMAIL / DIFY_ADMIN_PASSWORD set (and "
              "no --dsl), provision dify-dsl/Cat_LLM.yml into it as model o1.")  # fmt: skip
@click.option("--keep-dify", is_flag=True,
              help="With --with-dify: leave the Dify stack running on exit.")  # fmt: skip
@click.argument("serve_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- SERVE_ARGS...]")
@click.pass_context
def start(
    ctx: click.Context,
    host: str,
    port: int,
    config: str | None,
    dsl: tuple[str, ...],
    model: tuple[str, ...],
    tunnel: bool,
    with_dify: bool,
    keep_dify: bool,
    serve_args: tuple[str, ...],
) -> None:
    """Start the bridge, and optionally a public tunnel and/or a Dify; stop them all on
    Ctrl-C.

    Without DIFY_API_URL (and without --with-dify) the bridge runs in demo mode: it serves the
    built-in Dify emulator with the apps in dify-dsl/, and model "o1" answers "喵". Arguments
    after "--" go to `dify-bridge serve`.
    """
    from bridge.launch.start import Launch, StartOptions

    _check_pairs(ctx, model)
    if list(serve_args) != ctx.meta.get(_AFTER_DASHES, []):
        raise click.UsageError(
            f"unexpected argument {serve_args[0]!r} (arguments for `serve` go after --)", ctx
        )
    options = StartOptions(
        host=host,
        port=port,
        config=config,
        dsl=[Path(p) for p in dsl],
        models=list(model),
        tunnel=tunnel,
        with_dify=with_dify,
        keep_dify=keep_dify,
        serve_args=list(serve_args),
    )
    sys.exit(Launch(options, os.environ).run())
