"""devenv: the LLM Proxy's AWS stack on a laptop, and the harness that tests it on either target."""

__version__ = "0.1.0"
