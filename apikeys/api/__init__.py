"""The management REST API (Django REST framework), mounted at /api/ (``apikeys.api.urls``): relay keys,
sessions, usage and policies under /api/v1/, authenticated by personal access tokens (``apikeys.tokens``);
the OpenAPI schema at /api/schema/ and its docs page at /api/docs/ (drf-spectacular, assets served locally)."""
