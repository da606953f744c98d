# One image for every Flotilla process; docker-compose.yml runs it as migrate, web, worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_STATIC_ROOT=/app/static \
    FLOTILLA_MEDIA_ROOT=/data/media \
    FLOTILLA_BIND=0.0.0.0:8080

WORKDIR /app
RUN groupadd --system flotilla \
 && useradd --system --gid flotilla --home-dir /app --no-create-home flotilla

# Dependencies first, from pyproject.toml alone: a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['s3']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
# Static files are collected at build time (production settings want a key and a URL to load).
RUN pip install --no-deps '.[s3]' \
 && DJANGO_SECRET_KEY=collectstatic-only FLOTILLA_PUBLIC_URL=http://localhost \
    python manage.py collectstatic --noinput --verbosity 0 \
 && mkdir -p /data/media \
 && chown flotilla:flotilla /data/media

USER flotilla
EXPOSE 8080
CMD ["gunicorn", "-c", "config/gunicorn.conf.py"]
