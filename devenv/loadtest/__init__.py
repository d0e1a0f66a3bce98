"""Load tests: profiles, thresholds and verdicts, the Locust runner and the run reports.

Everything here except `runner` (which starts Locust in a subprocess) is plain computation that the
locustfile (inside Locust's gevent-patched process) and the `devenv loadtest` command both import.
"""
