"""The local AWS: moto's server with devenv's CloudFormation models, run as its own process (`python -m devenv.emulator`)."""
