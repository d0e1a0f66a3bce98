"""Failover experiments under load: experiments as data, actions through the AWS API, a verdict with
failed requests, recovery time and lost audit events (see `devenv failover`)."""
