# syntax=docker/dockerfile:1
# kubepim image: `make docker-build IMG=...`: the manager (/manager, the
# entrypoint) and the web console (/console, which the chart's console
# Deployment runs).

FROM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace
ENV GOTOOLCHAIN=local CGO_ENABLED=0
# Dependencies first, so that the module download stays cached while the
# sources change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY webhooks/ webhooks/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager && \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/console ./cmd/console

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://github.com/kubepim/kubepim" \
      org.opencontainers.image.title="kubepim" \
      org.opencontainers.image.description="Privileged Identity Management for Kubernetes RBAC" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /
COPY --from=build /out/manager /manager
COPY --from=build /out/console /console
USER 65532:65532
ENTRYPOINT ["/manager"]
