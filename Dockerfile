# syntax=docker/dockerfile:1
# crmmail: SMTP intake + workers for a smart mail domain (`crmmail serve`), one process per container.
#
#   docker build -t crmmail .
#   docker run -p 25:2525 -p 8080:8080 -v crmmail-data:/data \
#       -e CRMMAIL_SMART_DOMAINS=crm.example.com crmmail
#
# Without CRMMAIL_DATABASE_URL it keeps SQLite (and its key file for mailbox passwords) in /data.

# -- builder: wheels for the project and every dependency ------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a source change does not rebuild them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip wheel --wheel-dir /wheels -r requirements.txt

COPY README.md LICENSE ./
COPY crmmail ./crmmail
RUN pip wheel --no-deps --wheel-dir /wheels .

# -- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 crmmail \
    && useradd --system --uid 10001 --gid crmmail --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin crmmail

# Install from the builder's wheels only: nothing is fetched or compiled here.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/crmmail-*.whl

# Mount a volume on /data to keep the SQLite database (docker run -v crmmail-data:/data).
RUN mkdir /data && chown crmmail:crmmail /data
WORKDIR /data

# HTTP_HOST: probes and Prometheus reach /healthz, /readyz, /metrics from outside the container.
ENV CRMMAIL_DATABASE_URL=sqlite:////data/crmmail.db \
    CRMMAIL_SMTP_HOST=0.0.0.0 \
    CRMMAIL_SMTP_PORT=2525 \
    CRMMAIL_HTTP_HOST=0.0.0.0 \
    CRMMAIL_HTTP_PORT=8080

EXPOSE 2525 8080

USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CRMMAIL_HTTP_PORT', '8080') + '/healthz', timeout=4)"]

# `serve` on SIGTERM: not ready, stop accepting, finish DATA in progress (CRMMAIL_SHUTDOWN_GRACE,
# 30 s), 421 to idle sessions, exit. Give it longer than that before SIGKILL (docker stop -t 40).
STOPSIGNAL SIGTERM

# `init` creates or upgrades the schema (safe to run again). With several replicas on one
# database, run `crmmail init` once before rolling out and start the replicas with `crmmail serve`.
CMD ["sh", "-c", "crmmail init && exec crmmail serve"]
