# iac-agent and iac-coordinator in one image (docs/configuration.md, charts/iac-agent).
#
#   docker build -t iac-agent:0.1.0 .                                   no engine baked in: the agent downloads
#                                                                       each workspace's version from the plane
#   docker build -t iac-agent:0.1.0-tf1.6.6 --build-arg ENGINE=terraform \
#       --build-arg ENGINE_VERSION=1.6.6 --build-arg ENGINE_SHA256=<sha256 of the official zip> .
#
# The agent is the entrypoint; the coordinator is the same image with `command: ["iac-coordinator"]`. The runtime
# stage runs as uid 10001, keeps everything it writes under /var/lib/iac-agent (its data directory and $HOME) and
# /tmp, so it works with a read-only root file system. Its package list is packaging/runtime-packages.txt, installed
# by packaging/runtime-setup.sh; `make check-image` runs that same script in a debootstrap'd bookworm and the
# binaries in it, since no container engine is at hand where this is developed.
#
# Local test against a control plane reachable from the container:
#   docker run --rm --read-only --tmpfs /tmp -v iac-data:/var/lib/iac-agent -p 9180:9180 \
#       -e IAC_API_ENDPOINT=plane.example.internal -e SERVER_PORT=8080 -e IAC_AGENT_NAME=local-1 \
#       -e IAC_AGENT_TOKEN=apt_<pool>_<hex> iac-agent:0.1.0

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: the Makefile's own package list (make deps), then the binaries ----
FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
RUN make deps && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make all && make install DESTDIR=/out PREFIX=/usr/local

# ---- engine: an official terraform or tofu release, checked against ENGINE_SHA256; empty when ENGINE is "" ----
FROM ${DEBIAN_IMAGE} AS engine
ARG ENGINE=""
ARG ENGINE_VERSION=""
ARG ENGINE_SHA256=""
RUN set -eu; mkdir -p /out/bin; \
    if [ -z "$ENGINE" ]; then exit 0; fi; \
    case "$ENGINE" in \
      terraform) url_dir="https://releases.hashicorp.com/terraform/${ENGINE_VERSION}" ;; \
      tofu) url_dir="https://github.com/opentofu/opentofu/releases/download/v${ENGINE_VERSION}" ;; \
      *) echo "ENGINE=\"$ENGINE\" is not allowed: terraform, tofu or empty (no engine baked in)" >&2; exit 2 ;; \
    esac; \
    [ -n "$ENGINE_VERSION" ] || { echo "ENGINE_VERSION is required with ENGINE=$ENGINE" >&2; exit 2; }; \
    echo "$ENGINE_SHA256" | grep -Eq '^[0-9a-f]{64}$' || \
      { echo "ENGINE_SHA256=\"$ENGINE_SHA256\" is not allowed: the official zip's SHA-256, 64 lowercase hex digits" >&2; exit 2; }; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl unzip; \
    arch=$(dpkg --print-architecture); \
    zip="${ENGINE}_${ENGINE_VERSION}_linux_${arch}.zip"; \
    curl -fsSL --retry 3 -o "/tmp/$zip" "$url_dir/$zip"; \
    echo "$ENGINE_SHA256  /tmp/$zip" | sha256sum -c -; \
    unzip -o -d /tmp/engine "/tmp/$zip" "$ENGINE"; \
    install -m 0755 "/tmp/engine/$ENGINE" "/out/bin/$ENGINE"; \
    "/out/bin/$ENGINE" version

# ---- runtime ----
FROM ${DEBIAN_IMAGE} AS runtime
ARG ENGINE=""
COPY packaging/runtime-packages.txt packaging/runtime-setup.sh /tmp/setup/
RUN /bin/sh /tmp/setup/runtime-setup.sh /tmp/setup/runtime-packages.txt && rm -rf /tmp/setup
COPY --from=build /out/usr/local/bin/iac-agent /out/usr/local/bin/iac-coordinator /usr/local/bin/
COPY --from=engine /out/bin/ /usr/local/bin/
# A baked engine is the one every task uses (IAC_ENGINE_PATH); without one the variable is empty, which the agent
# reads as unset, and it downloads each workspace's version into its data directory (ref §7.3).
ENV HOME=/var/lib/iac-agent \
    IAC_AGENT_DATA_DIR=/var/lib/iac-agent \
    IAC_ENGINE_PATH=${ENGINE:+/usr/local/bin/${ENGINE}}
USER 10001:10001
WORKDIR /var/lib/iac-agent
VOLUME ["/var/lib/iac-agent"]
# 9180: the agent's status server (IAC_AGENT_LISTEN); 9190: the coordinator's API (IAC_COORD_LISTEN).
EXPOSE 9180 9190
ENTRYPOINT ["iac-agent"]
