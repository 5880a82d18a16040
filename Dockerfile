# The vitrine image that compose.yaml's worker, ui and finetune services run.
#
#   docker build -t vitrine:local .
#   docker run --rm -v vitrine-data:/data vitrine:local collections list
#
# Dependencies come from the pinned lock, so the image runs what the tests ran;
# the CUDA-enabled torch in it uses a GPU where the container is given one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install -r /tmp/requirements.lock && rm /tmp/requirements.lock

COPY pyproject.toml README.md /src/
COPY services /src/services
COPY ingest /src/ingest
COPY finetune /src/finetune
COPY ui /src/ui
COPY vitrine /src/vitrine
RUN pip install --no-deps /src && rm -rf /src

# One data folder for the model registry, thumbnails, collection state, reports and
# job state; compose mounts the shared volume here. Model downloads are cached in it
# too, so every service and every restart reuses them.
RUN useradd --create-home --uid 10001 vitrine \
    && mkdir /data \
    && chown vitrine:vitrine /data
ENV VITRINE_DATA_DIR=/data \
    HF_HOME=/data/cache/huggingface \
    XDG_CACHE_HOME=/data/cache
VOLUME /data

USER vitrine
WORKDIR /home/vitrine
EXPOSE 8501
ENTRYPOINT ["vitrine"]
CMD ["--help"]
