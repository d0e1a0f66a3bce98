"""A pass-through TCP proxy that failover experiments steer: cut connections, refuse new ones, add latency.

It stands where Toxiproxy would (not installable here) in front of the local Postgres (Aurora's endpoint)
and Redis (ElastiCache's). Run it as a direct child of the supervisor (`command`, `ready_probe`):

    python -m devenv.services.faultproxy --listen 127.0.0.1:P --upstream 127.0.0.1:Q --control 127.0.0.1:C

Control API (JSON over HTTP on --control):
    GET    /        status: listen/upstream addresses, open and total connections, the current fault
    POST   /faults  {"kind": "cut"}                                  close every open connection now
                    {"kind": "refuse", "duration_s": N}              stop listening for N s (new connections
                                                                     are refused; open ones stay)
                    {"kind": "latency", "latency_ms": N, "duration_s": N?}  delay every chunk N ms, both ways
    DELETE /faults  clear the current fault (listen again, no latency)

`refuse` and `latency` are states (a new one replaces the current one); `cut` is a one-off action. Bad
input gets a 400 with {"error": ..., "hint": ...}. `cut`, `refuse`, `add_latency`, `clear` and `status`
are the Python client.

Modules: relay (the TCP proxy and its faults), control (the control API), process (argv, readiness, main),
client (the Python client).
"""

from devenv.services.faultproxy.client import add_latency, clear, cut, refuse, status
from devenv.services.faultproxy.process import command, ready_probe

__all__ = ["add_latency", "clear", "command", "cut", "ready_probe", "refuse", "status"]
