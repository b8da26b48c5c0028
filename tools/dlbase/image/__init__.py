"""An image on the local daemon: finding it, and reading facts from inside it.

One home, low enough (above the engine and define, below everything that reads an image)
that the builder, the reports, the scanner, verify and trust all read an image the same way.
"""
