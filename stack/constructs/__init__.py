"""The stack's building blocks, one module per concern: network, data, app config, services, observability."""
