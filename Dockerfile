# syntax=docker/dockerfile:1
# One image for both roles: `node dist/main.api.js` (API) and `node dist/main.worker.js` (worker).
# Node 24, the current LTS line; the code runs on every Node that package.json's `engines` names
# (^20.19.0 || ^22.13.0 || >=24: the build machines and CI run Node 20).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 8080
CMD ["node", "dist/main.api.js"]
