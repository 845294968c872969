# syntax=docker/dockerfile:1
# nnbot: one image for `bot run`, `bot serve` and `bot train`, as docker-compose.yml uses it.
#
#   docker build -t nnbot .                                                   # CPU (TensorFlow, the default)
#   docker build -t nnbot:gpu --build-arg TENSORFLOW='tensorflow[and-cuda]' .  # NVIDIA GPU, for training
#
# The GPU build installs TensorFlow's CUDA and cuDNN libraries as pip wheels, so the host needs only the NVIDIA
# driver and the NVIDIA Container Toolkit, and this slim base serves both builds. The model code is Keras 3 and runs
# on any backend; TensorFlow is the one nnbot depends on, so the GPU build adds its CUDA extra rather than a second
# framework.

FROM python:3.11-slim

# TensorFlow as pip should install it: "tensorflow" (CPU), or "tensorflow[and-cuda]" (with the CUDA libraries).
# pyproject.toml's own tensorflow requirement (its version bounds) applies to either.
ARG TENSORFLOW=tensorflow

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/nnbot \
    PATH=/opt/nnbot/bin:$PATH \
    BOT_HOME=/data

# Its own user, and BOT_HOME owned by it: a named volume mounted at /data starts as a copy of this folder, owner
# included, so the bots can write there without root.
RUN groupadd --system --gid 10001 nnbot \
    && useradd --system --uid 10001 --gid nnbot --home-dir /home/nnbot --create-home --shell /usr/sbin/nologin nnbot \
    && mkdir /data \
    && chown nnbot:nnbot /data \
    && python -m venv /opt/nnbot

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when the dependencies change, not when
# the source does.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt "${TENSORFLOW}" \
    && rm /tmp/requirements.txt

# Then the source, installed without touching the dependencies (a regular install, not editable: /src is not needed
# at run time, and the templates, migrations and bundled data travel as package data).
COPY README.md LICENSE ./
COPY bot ./bot
COPY models ./models
COPY scrapers ./scrapers
RUN pip install --no-deps . \
    && rm -rf /src/build /src/*.egg-info

WORKDIR /data
USER nnbot

# The scheduler, with the bots in BOT_HOME/bots.toml; docker-compose.yml gives each service its own command.
CMD ["bot", "run", "--config", "/data/bots.toml"]
