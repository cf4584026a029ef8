"""Typed models and query functions. Functions take the caller's session and never commit."""
