# syntax=docker/dockerfile:1
# The Certflow worker service. Build: docker build -t certflow:0.1.0 .
# Run:   docker run -v $PWD/certflow.json:/etc/certflow/config.json:ro certflow:0.1.0
# The TypeScript sources run through tsx (a production dependency): there is no build step to drift from.

ARG NODE_IMAGE=node:22.23.2-bookworm-slim

# ---- production dependencies only, exactly as locked ----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm 10 installs exactly what package-lock.json says (`npm ci`); npm 11 refuses this lock file (it reports the
# optional @swc/core-darwin-* / -win32-* packages as missing), so this stage pins npm 10 whatever the base ships.
# --ignore-scripts: no production dependency needs an install script (swc and Temporal's core bridge come as
# prebuilt platform packages), and none gets to run code at build time.
RUN npm install --global --no-audit --no-fund npm@10.9.3 \
  && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY client ./client
COPY bin ./bin
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY config.example.json ./config.example.json

# State (local vault, dev CA, sent-logs) lives under /var/lib/certflow: mount a volume there.
# The configuration is read from /etc/certflow/config.json: mount it read-only.
RUN mkdir -p /var/lib/certflow /etc/certflow \
  && chown node:node /var/lib/certflow

# The image's unprivileged user (uid 1000); nothing here needs root.
USER node

# /healthz, /readyz and /metrics. The worker listens on http.host (default 127.0.0.1): set it, or
# CERTFLOW_HTTP_HOST, to 0.0.0.0 to publish the port. The health check asks from inside the container.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "/healthz"]

# SIGTERM drains: /readyz turns 503, running activities get shutdownGraceSeconds, then exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--import", "tsx", "worker/main.ts"]
CMD ["--config", "/etc/certflow/config.json"]
