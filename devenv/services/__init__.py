"""One module per local service; `infrastructure` assembles the ones `devenv up --infra-only` runs."""
