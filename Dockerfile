# Build stage: compile TypeScript.
FROM node:20-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY scripts ./scripts
COPY test ./test
COPY bench ./bench
ARG GIT_SHORT_SHA=""
RUN npx tsc -p tsconfig.json && node scripts/build-info.mjs \
 && if [ -n "$GIT_SHORT_SHA" ]; then sed -i "s/\"git_short_sha\":\"[^\"]*\"/\"git_short_sha\":\"$GIT_SHORT_SHA\"/" dist/build-info.json; fi

# Runtime stage: production dependencies and the compiled server only, as a non-root user.
FROM node:20-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY upload-configs ./upload-configs
COPY configs ./configs
RUN mkdir -p uploads && chown -R node:node uploads
USER node
EXPOSE 8080 8081
CMD ["node", "dist/cmd/main.js"]
