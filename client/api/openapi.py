"""Write the site API's OpenAPI schema: ``python -m pathloop.client.api.openapi FILE``.

The viewer's typed client is generated from the file this writes (``viewer/openapi.json``);
tests/api checks that the committed file matches the app.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pathloop.client.settings import SiteSettings


def schema() -> dict[str, Any]:
    """The OpenAPI document of the app (no store is opened)."""
    from pathloop.client.api import create_app

    app = create_app(SiteSettings(), viewer_dir=Path("/nonexistent"))
    return app.openapi()


def render() -> str:
    """The schema as the committed file holds it (sorted keys, 2-space indent)."""
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pathloop.client.api.openapi FILE", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
