"""One module per `dlbase` verb; each exposes `command`."""
