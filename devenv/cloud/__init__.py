"""The local AWS: moto's server with devenv's CloudFormation models (`python -m devenv.cloud`)."""
