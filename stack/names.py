"""The stack's names are devenv's (devenv/stack_names.py, shipped in its wheel): one source.

The CDK app runs in the project's environment, where devenv is installed.
"""

from devenv.stack_names import *  # noqa: F403
