"""Where the collection's documentation lives; one place to change it."""

from __future__ import annotations

from pydantic import HttpUrl

DOCS_URL = "https://github.com/modeldeploy/modeldeploy/blob/main/docs/prefect.md"


def docs(anchor: str) -> HttpUrl:
    """The guide's URL, pointing at one section (an HttpUrl, as `Block` declares it)."""
    return HttpUrl(f"{DOCS_URL}#{anchor}")
