"""The REST API under /api/v1: thin routes that parse, authorize and call services."""
