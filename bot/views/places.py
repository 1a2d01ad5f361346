"""A place (a node of the org tree) as it is shown in messages."""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.services.grids import path_label
from storage.models import OrgNode


def place_html(path: Sequence[OrgNode], language: str) -> str:
    """A node's path for HTML messages; names come from imported files, so they are escaped."""
    return html.escape(path_label(path, language))
