import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fixtures_upstream import fake_upstream, fake_upstream_server, upstream_settings  # noqa: E402,F401
