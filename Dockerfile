# Lab Orchestrator server image.
# The build stage runs the same commands as a developer and CI (npm ci, npm run build); the runtime
# stage runs what `npm start` runs after its build: node dist/src/main.js.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# No compiler: the native modules (argon2, esbuild) come prebuilt in npm packages; SQLite is node:sqlite.
WORKDIR /app
# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    SQLITE_PATH=/data/lab-orchestrator.sqlite3
WORKDIR /app
# The application stays owned by root, so the server (user node) cannot change its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The only writable place: the SQLite file of the default engine (unused with DATABASE_ENGINE=postgres).
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
# A larger young generation: a burst of status changes fanned out to thousands of subscriptions
# allocates tens of megabytes within milliseconds; with V8's default 16 MB semi-space that is several
# scavenges in the middle of the burst (measured in bench/RESULTS.md, which runs with these options).
ENV NODE_OPTIONS="--max-semi-space-size=64"
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# main.ts drains connections and closes the ORM on SIGTERM.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
