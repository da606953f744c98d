"""gunicorn settings: threaded sync workers (gthread); every value overridable by environment."""

import os

bind = os.environ.get("FLOTILLA_BIND", "127.0.0.1:8080")
worker_class = "gthread"
workers = int(os.environ.get("FLOTILLA_WEB_WORKERS", "2"))
threads = int(os.environ.get("FLOTILLA_WEB_THREADS", "8"))
# Large artifact uploads stream for a long time on slow links.
timeout = int(os.environ.get("FLOTILLA_WEB_TIMEOUT", "600"))
keepalive = 30
accesslog = os.environ.get("FLOTILLA_ACCESS_LOG", "-") or None
errorlog = "-"
wsgi_app = "config.wsgi:application"
# gunicorn 27's control socket sits at one fixed path per user: several servers on one
# machine (tests, benchmarks) would fight over it, and Flotilla does not use it.
control_socket_disable = True
