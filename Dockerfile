# The playground image: one image for every role in compose.yaml (web, worker, reaper, migrate).
# It runs from the source folder (/app), like a checkout, with the runtime dependencies only.
FROM python:3.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fonts for the prompts the local engine draws (Noto CJK covers Chinese, Japanese and Korean).
# Drop this layer if you only forward to MindVideo.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir playground && touch playground/__init__.py && pip install . && pip uninstall -y playground
COPY . .
RUN pip install --no-deps -e . \
    && SECRET_KEY=collectstatic-only PLAYGROUND_DATA_DIR=/tmp/build python manage.py collectstatic --no-input -v 0 \
    && rm -rf /tmp/build \
    && useradd --system --uid 10001 --home-dir /app playground \
    && mkdir -p /data/media \
    && chown -R playground /data

USER playground
# Static files are collected above; media (task outputs) live on the volume mounted at /data/media.
ENV PLAYGROUND_DATA_DIR=/data \
    PLAYGROUND_MEDIA_ROOT=/data/media \
    WHITENOISE_USE_FINDERS=false \
    PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn playground.wsgi --config python:playground.gunicorn_conf --bind 0.0.0.0:${PORT} --threads 4 --access-logfile -"]
