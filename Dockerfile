# syntax=docker/dockerfile:1
# rbd-provisioner image: the controller and its librbd addon on Node 24 LTS, Debian trixie (its librbd is Ceph
# Reef, maintained; bookworm's is Pacific, end of life).
# Build from the repository root: bash scripts/image.sh (docker, podman or buildah), or
#   docker build --build-arg VERSION=<chart appVersion> -t rbd-provisioner:<chart appVersion> .
# The bases are pinned by digest (the multi-architecture index, so one digest serves amd64 and arm64): a tag
# moves, a digest does not. Move them deliberately, both together, to the same Node 24 release.

# Build stage: compiles the addon against Ceph's headers and the TypeScript, then drops dev deps.
FROM node:24-trixie@sha256:be40f6a87b9b22215ddb20da0a2320a5c6d583fe3ee3b0024d9fa4f05b40c8fd AS build
# Debian's packages are not pinned by version: trixie's point releases replace them, and a pin would fail the
# build on the first security update. The base's digest fixes the release they come from.
# hadolint ignore=DL3008
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
FROM node:24-trixie-slim@sha256:8ec5d7557396cfe32d21c3f9c13072355ceab22b584578ca4bb28af31120cffe
# The same reasoning as the build stage's: the base's digest fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librbd1 librados2 \
 && rm -rf /var/lib/apt/lists/*
# Stamped by scripts/image.sh and the release workflow (.github/workflows/release.yaml).
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="rbd-provisioner" \
      org.opencontainers.image.description="Kubernetes external dynamic provisioner for Ceph RBD, over librbd" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/node:24-trixie-slim"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/build/Release/*.node ./build/Release/
# Matches the chart's securityContext (runAsUser 10001); no passwd entry is needed.
USER 10001:10001
# The V8 flags of src/node-flags.ts (why they are there); a test checks that both say the same.
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/src/main.js"]
