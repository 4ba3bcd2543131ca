# The worker image: agentstate installed for production (no devDependencies) beside the agent in
# deploy/image/, run as the unprivileged `node` user (uid 1000). Build from the repository root:
#
#   docker build -t agentstate-worker:0.1.0 .
#
# For your own agent, keep stage 2 and replace deploy/image/ with your app (its package.json
# depending on agentstate from npm, and its agent file). deploy/kubernetes/ runs this image;
# test/integration/docker-image.test.ts runs these steps in a clean copy of the repository.

# 1. The package as npm would publish it: `npm pack` builds it first (its `prepack`), which
#    needs the devDependencies, so they are installed here and left behind with this stage.
FROM node:26-bookworm-slim AS package
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npm pack --pack-destination . && mv agentstate-*.tgz agentstate.tgz

# 2. The app: the agent and its production dependencies only.
FROM node:26-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY deploy/image/package.json deploy/image/agent.js ./
COPY --from=package /src/agentstate.tgz ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force
ENV PATH=/app/node_modules/.bin:$PATH
USER node
# Health (/, /ready), /worker and /metrics.
EXPOSE 8081
CMD ["agent", "start", "agent.js"]
