# syntax=docker/dockerfile:1
# The Certflow worker service. Build: docker build -t certflow:0.1.0 .
# Run:   docker run --read-only --tmpfs /tmp -v $PWD/certflow.json:/etc/certflow/config.json:ro certflow:0.1.0
# The image runs the build (dist/: the worker, the CLI and the workflow bundle, made by `npm run build` in the
# build stage); no TypeScript sources, no tsx, no development packages and no other platform's binaries.

# node 22.23.2 on Debian bookworm, slim, pinned by digest: the digest that public Dockerfiles pin for this tag
# (e.g. PointCommunity/pointview and doubtfire-web, both `node:22[.23.2]-bookworm-slim@sha256:83f487e0…`);
# re-pin with `docker buildx imagetools inspect node:22.23.2-bookworm-slim` when moving to a newer Node.
ARG NODE_IMAGE=node:22.23.2-bookworm-slim@sha256:83f487e0a63425e5b4d146fb5e5be574bcbe1b7b843d3ebafdd95eaf7767a7e5

# npm 10 installs exactly what package-lock.json says (`npm ci`); npm 11 refuses this lock file (it reports the
# optional @swc/core-darwin-* / -win32-* packages as missing), so these stages pin npm 10 whatever the base ships.
# --ignore-scripts: no dependency needs an install script (esbuild, swc and Temporal's core bridge come as
# prebuilt platform packages), and none gets to run code at build time.

# ---- build: every dependency, then dist/ (esbuild) and dist/workflow-bundle*.js (bundleWorkflowCode) ------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --global --no-audit --no-fund npm@10.9.3 \
  && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY client ./client
COPY scripts/build.ts ./scripts/build.ts
RUN npm run build

# ---- production dependencies only, exactly as locked, this platform's binaries only -----------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY deploy/prune-node-modules.mjs ./
RUN npm install --global --no-audit --no-fund npm@10.9.3 \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force \
  && node prune-node-modules.mjs node_modules

# ---- runtime ----------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# Node 22.1+ caches compiled modules there (on the /tmp tmpfs of a read-only container): later starts compile less
ENV NODE_ENV=production \
  NODE_COMPILE_CACHE=/tmp/node-compile-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY schema ./schema
COPY config.example.json ./config.example.json

# State (local vault, dev CA, sent-logs) lives under /var/lib/certflow: mount a volume there.
# The configuration is read from /etc/certflow/config.json: mount it read-only.
# Nothing else is written: the root filesystem can be read-only (docker-compose.yml: read_only, /tmp a tmpfs).
RUN mkdir -p /var/lib/certflow /etc/certflow \
  && chown node:node /var/lib/certflow \
  && ln -s /app/bin/certflow.mjs /usr/local/bin/certflow

# The image's unprivileged user (uid 1000); nothing here needs root.
USER node

# /healthz, /readyz and /metrics. The worker listens on http.host (default 127.0.0.1): set it, or
# CERTFLOW_HTTP_HOST, to 0.0.0.0 to publish the port. The health check asks from inside the container.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "/healthz"]

# SIGTERM drains: /readyz turns 503, running activities get shutdownGraceSeconds, then exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/worker/main.js"]
CMD ["--config", "/etc/certflow/config.json"]
