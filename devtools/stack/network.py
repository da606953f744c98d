"""Addresses and probes: database and Redis URLs, and whether a server answers."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql

from devtools.stack import LOCAL_HOST


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_answers(url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return True
    except psycopg.Error:
        return False


def redis_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """A PING that gets +PONG (a Redis that wants a password does not count)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def tcp_database_url(host: str, port: int, name: str) -> str:
    return f"postgres://postgres@{host}:{port}/{quote(name, safe='')}"


def socket_database_url(socket_dir: Path | str, port: int, name: str) -> str:
    """A Unix-socket URL that django-environ turns into ``OPTIONS={'host': dir, 'port': port}``."""
    return (
        f"postgres://postgres@/{quote(name, safe='')}"
        f"?host={quote(str(socket_dir), safe='/')}&port={port}"
    )


def redis_url(host: str, port: int, db: int) -> str:
    return f"redis://{host}:{port}/{db}"


def ensure_database(url: str) -> bool:
    """Create the database a PostgreSQL URL names if it is missing; False if it was there."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if found:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:  # created meanwhile by a concurrent run
            return False
        return True


def display_url(bind: str) -> str | None:
    """The URL a person opens for a gunicorn bind address (None for unix sockets and fds)."""
    if bind.startswith(("unix:", "fd://")):
        return None
    if bind.startswith("["):
        host, _, port = bind[1:].partition("]")
        port = port.lstrip(":")
    elif bind.count(":") == 1:
        host, _, port = bind.partition(":")
    else:
        host, port = bind, ""
    port = port or "8000"  # gunicorn's default port
    if host in ("", "0.0.0.0", "::"):
        host = LOCAL_HOST
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
