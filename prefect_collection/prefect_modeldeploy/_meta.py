"""Where the collection's documentation lives; one place to change it."""

from __future__ import annotations

DOCS_URL = "https://github.com/modeldeploy/modeldeploy/blob/main/docs/prefect.md"


def docs(anchor: str) -> str:
    """The guide's URL, pointing at one section."""
    return f"{DOCS_URL}#{anchor}"
