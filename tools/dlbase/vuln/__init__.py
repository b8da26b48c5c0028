"""Known vulnerabilities of what an image installs: OSV advisories, version matching, VEX.

Every module here is pure (files in, values out) except :mod:`dlbase.vuln.image_read`,
the one that asks the engine what an image contains.
"""
