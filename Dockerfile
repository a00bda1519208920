# syntax=docker/dockerfile:1
# One image for both roles: `node dist/main.api.js` (API) and `node dist/main.worker.js` (worker).
# Node 24, the current LTS line; the code runs on every Node that package.json's `engines` names
# (^20.19.0 || ^22.13.0 || >=24: the build machines and CI run Node 20).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The workspace packages' package.json first: `npm ci` links them (packages/mongo-wire, the
# embedded MongoDB-compatible server, which the all-in-one role imports by its package name).
COPY package.json package-lock.json ./
COPY packages/mongo-wire/package.json ./packages/mongo-wire/
RUN npm ci
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY scripts ./scripts
COPY packages ./packages
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# node_modules/@openhim-rerun/mongo-wire links here: the package's manifest and build.
COPY --from=build --chown=node:node /app/packages/mongo-wire/package.json ./packages/mongo-wire/
COPY --from=build --chown=node:node /app/packages/mongo-wire/dist ./packages/mongo-wire/dist
USER node
EXPOSE 8080
CMD ["node", "dist/main.api.js"]
