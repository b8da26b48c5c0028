"""The OCI distribution (Registry HTTP API v2) client."""
