"""The host side of the local cloud: makes local processes match what the emulator says is deployed."""
