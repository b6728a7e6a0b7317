# yieldtune worker / dashboard image.
#   CPU (default):  docker build -t yieldtune .
#   CUDA:           docker build -t yieldtune:cuda --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# docker-compose.yml builds both (the CUDA one only for the `gpu` profile).
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TUNE_CACHE_DIR=/data/cache

# RDKit's wheel links libXrender/libXext; the rest of the stack is pure wheels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxrender1 libxext6 \
 && rm -rf /var/lib/apt/lists/*

# Torch first, from its own index: the CPU wheel (no CUDA libraries) unless TORCH_INDEX_URL says otherwise.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[postgres,grpc]"
COPY studies ./studies

# Run as an unprivileged user; the named volumes mounted below inherit these owners on first use.
RUN useradd --create-home --uid 1000 tune \
 && mkdir -p /app/studies/artifacts /app/dashboards /data/cache \
 && chown -R tune:tune /app/studies /app/dashboards /data
USER tune

CMD ["tune", "--help"]
