"""Transports: each one adapts a chat framework or API to the neutral types, in a module of its own."""
