"""`python -m devenv` is the `devenv` command (the detached supervisor re-enters this way)."""

from devenv.cli.app import main

main()
