"""Known vulnerabilities of what an image installs: OSV advisories, version matching, VEX.

Every module here is pure (files in, values out) except :mod:`dlbase.vuln.image_scan`;
what an image contains is read by :mod:`dlbase.image.inventory_read`.
"""
