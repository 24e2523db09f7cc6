# The upload server's image.
#   docker build -t dex-upload-server .      (--build-arg GIT_SHORT_SHA=$(git rev-parse --short HEAD) for /version)
#   docker run -p 8080:8080 dex-upload-server [-appconf FILE]
# docker-compose.yml builds and runs it with Redis, Prometheus and Grafana.

# Build stage: compile the TypeScript with the dev dependencies.
FROM node:20-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY scripts ./scripts
# What GET /version reports (scripts/build-info.mjs); empty means package.json's value. There is no git in here.
ARG REPO=""
ARG LATEST_RELEASE_VERSION=""
ARG GIT_SHORT_SHA=unspecified
RUN BUILD_REPO="$REPO" BUILD_LATEST_RELEASE_VERSION="$LATEST_RELEASE_VERSION" BUILD_GIT_SHORT_SHA="$GIT_SHORT_SHA" npm run build

# Runtime stage: the production dependencies and the compiled server only, run as the unprivileged `node` user.
FROM node:20-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY upload-configs ./upload-configs
COPY configs ./configs
RUN mkdir -p uploads && chown node:node uploads
USER node
EXPOSE 8080 8081
# /health answers 200 whenever the server serves (DEGRADED included: a dead dependency is not cured by a restart).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD wget -q -O /dev/null "http://127.0.0.1:${SERVER_PORT:-8080}/health" || exit 1
ENTRYPOINT ["node", "dist/cmd/main.js"]
