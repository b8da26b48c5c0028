"""Publishing a verified image to a registry."""
