"""Per-upstream series. Labels are the model id and the upstream's configured name (never a
key); causes are the bounded labels of bridge.upstreams.failover."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_REQUESTS = Counter(
    "bridge_upstream_requests_total",
    "Runs sent to an upstream, by outcome (started: Dify accepted it; failed: it did not).",
    ["model", "upstream", "outcome"],
)
UPSTREAM_FAILURES = Counter(
    "bridge_upstream_failures_total",
    "Failures of an upstream before Dify accepted the run (and failed probes), by cause.",
    ["model", "upstream", "cause"],
)
UPSTREAM_FAILOVERS = Counter(
    "bridge_upstream_failovers_total",
    "Requests moved from this upstream to another one of the model, by cause.",
    ["model", "upstream", "cause"],
)
UPSTREAM_EJECTIONS = Counter(
    "bridge_upstream_ejections_total",
    "Times the breaker ejected this upstream (seen by this process).",
    ["model", "upstream"],
)
UPSTREAM_RESTORES = Counter(
    "bridge_upstream_restores_total",
    "Times a probe at the end of a cool-down brought this upstream back.",
    ["model", "upstream"],
)
UPSTREAM_HEALTHY = Gauge(
    "bridge_upstream_healthy",
    "1 while the upstream takes traffic, 0 while it is ejected.",
    ["model", "upstream"],
    multiprocess_mode="livemin",
)
UPSTREAM_IN_FLIGHT = Gauge(
    "bridge_upstream_in_flight",
    "Dify streams open to this upstream.",
    ["model", "upstream"],
    multiprocess_mode="livesum",
)
UPSTREAM_TTFE = Histogram(
    "bridge_upstream_ttfe_seconds",
    "From sending the run to Dify's first event, per upstream.",
    ["model", "upstream"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
