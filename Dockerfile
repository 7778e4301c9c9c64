# syntax=docker/dockerfile:1
#
# Valerix: one compiled binary on a distroless base, running as a non-root user.
#   docker build -t valerix .                        the application (default, last stage)
#   docker build --target backup -t valerix-backup .   pg_dump/pg_restore + ops/backup scripts
# The root filesystem can be mounted read-only: the binary writes only to /data (embedded
# PostgreSQL, used when DATABASE_URL is unset) and /tmp.
# Both images carry OCI labels; say what is built (ops/deploy.sh passes the first two):
#   --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=<repository URL>

# --- build: npm installs the pinned toolchain (bun comes from package.json), bun compiles ---
FROM node:22-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && mkdir -p /out/data \
 && cp dist/valerix /out/valerix

# --- backup: the image the backup CronJobs run (ops/k8s/base/backup.yaml) ---
# Same PostgreSQL major as the server, so pg_dump can read it; curl ships the daily bundle.
FROM postgres:16-bookworm AS backup
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
COPY --chmod=0555 ops/backup/backup.sh ops/backup/ship-daily.sh ops/backup/restore.sh /opt/valerix/backup/
# uid 999 is the image's postgres user.
USER 999:999
ENTRYPOINT []
CMD ["/opt/valerix/backup/backup.sh", "--all"]
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="valerix-backup" \
      org.opencontainers.image.description="pg_dump, pg_restore and the Valerix backup scripts" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

# --- runtime: glibc and libstdc++ only; no shell, no package manager ---
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build --chmod=0555 /out/valerix /app/valerix
# An empty, writable data folder for the embedded database.
COPY --from=build --chown=65532:65532 /out/data /data
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    VALERIX_DATA_DIR=/data
EXPOSE 3000
# 65532 is distroless's "nonroot"; the Kubernetes manifests run as the same uid.
USER 65532:65532
# No curl in a distroless image: the binary checks its own /health/live.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/app/valerix", "healthcheck"]
ENTRYPOINT ["/app/valerix"]
# Last, so a new revision changes only the image's metadata, not a layer.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="valerix" \
      org.opencontainers.image.description="Order and inventory service that stays correct when things break" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
