"""The engine's version, written into every record so a later release can migrate it."""

__version__ = "0.1.0"
