# syntax=docker/dockerfile:1
# rbd-provisioner image: the controller and its librbd addon on Node 24 LTS (Debian bookworm).
# Build from the repository root: docker build -t rbd-provisioner:<chart appVersion> .

# Build stage: compiles the addon against Ceph's headers and the TypeScript, then drops dev deps.
FROM node:24-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential python3 librbd-dev librados-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: the package's install hook builds the addon, and its sources are not copied yet.
RUN npm ci --ignore-scripts
COPY binding.gyp tsconfig.json ./
COPY scripts/build.sh scripts/node.sh scripts/
COPY addon addon
COPY src src
# build.sh points node-gyp at this Node's own headers: no download during the build.
RUN bash scripts/build.sh addon \
 && npx --no-install tsc -p . \
 && npm prune --omit=dev --ignore-scripts

# Runtime stage: Node plus only the Ceph client libraries the addon links (the test
# test/chart/image-deps.test.ts checks this list against `ldd` of the built addon).
FROM node:24-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librbd1 librados2 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/build/Release/*.node ./build/Release/
# Matches the chart's securityContext (runAsUser 10001); no passwd entry is needed.
USER 10001:10001
ENTRYPOINT ["node", "dist/src/main.js"]
