"""One model over several Dify apps and instances: balancing, safe failover, ownership of
conversations and circuit breaking (docs/upstreams.md).

Sits between the engine and the conversation/input layers: the engine asks a group for an
upstream, reports what happened, and this package keeps the health of each upstream.
"""

from bridge.upstreams.failover import failover_cause
from bridge.upstreams.group import Upstream, UpstreamGroup
from bridge.upstreams.pool import UpstreamPool, upstream_unavailable

__all__ = ["Upstream", "UpstreamGroup", "UpstreamPool", "failover_cause", "upstream_unavailable"]
