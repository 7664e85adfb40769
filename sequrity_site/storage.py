"""Static files storage for production (``DEBUG`` off): WhiteNoise's compressed, hashed files, made by
``manage.py collectstatic`` (a step of the production path, see the README).

Forgetting ``collectstatic`` must not turn every page into a 500 (``Missing staticfiles manifest entry``):
while there is no manifest at all, names stay plain and WhiteNoise serves the files from the source
directories (``WHITENOISE_USE_FINDERS`` is on while nothing is collected), with a warning in the log and the
deployment check ``sequrity.W001``. Once collected, the manifest is strict as usual.
"""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticStorage(CompressedManifestStaticFilesStorage):
    _warned = False

    def stored_name(self, name: str) -> str:
        if not self.hashed_files and not self.manifest_storage.exists(self.manifest_name):
            if not StaticStorage._warned:
                StaticStorage._warned = True
                logger.warning(
                    "static files are not collected (no %s in STATIC_ROOT): serving them unhashed "
                    "from the source directories; run manage.py collectstatic",
                    self.manifest_name,
                )
            return name
        return super().stored_name(name)
