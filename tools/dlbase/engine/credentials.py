"""Registry credentials as `docker login` left them, read by docker-py's own ``docker.auth``.

Why here: reading the Docker config (``auths`` entries, ``credHelpers`` per registry,
``credsStore`` for all) is docker-py's job and docker-py is imported only inside the
engine, so the registry client stays free of docker and is handed the credentials by
its caller. Credentials are never taken from the command line, and never written.
"""

from __future__ import annotations

import os

import docker.auth
import docker.errors

from dlbase.core.reference import DOCKER_HUB_API

USER_ENV, PASSWORD_ENV = "DLBASE_REGISTRY_USER", "DLBASE_REGISTRY_PASSWORD"


def for_registry(host: str) -> tuple[str, str] | None:
    """(user, password) for a registry: DLBASE_REGISTRY_USER/_PASSWORD, else what `docker
    login` stored, resolved by ``docker.auth`` exactly as the Docker client does. None
    when there is none (or the helper fails: the registry's 401 then says what is missing)."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return user, password
    try:
        entry = docker.auth.load_config().resolve_authconfig(docker.auth.INDEX_NAME if host == DOCKER_HUB_API
                                                             else host)
    except docker.errors.DockerException:
        return None
    # docker-py spells an ``auths`` entry's keys in lower case and a helper's capitalised.
    user = (entry or {}).get("Username") or (entry or {}).get("username")
    password = (entry or {}).get("Password") or (entry or {}).get("password")
    return (str(user), str(password)) if user and password is not None else None


def source(host: str) -> tuple[tuple[str, str] | None, str]:
    """(credentials, where they came from): the source, never the values, is reported."""
    creds = for_registry(host)
    if creds is None:
        return None, "none"
    env = os.environ.get(USER_ENV) and os.environ.get(PASSWORD_ENV)
    return creds, f"environment ({USER_ENV}/PASSWORD)" if env else "docker config"
