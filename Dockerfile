# pgstask: `docker build -t pgstask .`, then `docker run --rm pgstask --help`.
# The image runs the `pgstask` command; docker-compose.yml uses it for `migrate` and the daemons.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY pgstask ./pgstask
COPY migrations ./migrations
RUN pip install .

# Storage (progress snapshots, {id}.log files, report results) is .pgstask/storage under the
# working directory; docker-compose.yml mounts a volume there.
WORKDIR /srv/pgstask
RUN rm -rf /src \
    && useradd --system --home-dir /srv/pgstask pgstask \
    && mkdir -p /srv/pgstask/.pgstask/storage \
    && chown -R pgstask:pgstask /srv/pgstask
USER pgstask

ENTRYPOINT ["pgstask"]
CMD ["--help"]
