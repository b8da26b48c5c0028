"""The environment variables that carry signing secrets, named once.

Trust reads them (:mod:`dlbase.trust.keys`); verify drops them from every child's
environment. Both need the names, and verify must not import trust, so they live here.
"""

PASSWORD_ENV = "DLBASE_SIGNING_PASSWORD"
KEY_ENV = "DLBASE_SIGNING_KEY"
SECRET_ENV = (PASSWORD_ENV, KEY_ENV)  # never handed to a child process
