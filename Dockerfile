# Multi-stage build: front-end deps from npm, a static Go binary, and a
# run-time image with no shell and a non-root user.
FROM node:20-bookworm-slim AS web
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run check && npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY --from=web /src .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/crisisroom ./cmd/crisisroom && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/crisisroom /crisisroom
# A named volume mounted here starts with this owner, so nonroot can write.
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
ENV CRISISROOM_DATA=/data CRISISROOM_ADDR=:8080
VOLUME /data
EXPOSE 8080 3478/udp 3478/tcp
ENTRYPOINT ["/crisisroom"]
CMD ["serve"]
