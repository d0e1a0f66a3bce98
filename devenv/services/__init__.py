"""One module per local service; `assembly` puts together what `devenv up` starts, on claimed ports.

Kept empty: every service's process (the fault proxy, the emulator) imports this package first, and
starts faster without the assembly's imports.
"""
