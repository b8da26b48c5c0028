"""The small shared core: typed errors, checks of input, files written all or nothing, YAML, where the project is."""
