#!/bin/sh
# The solution of "Multi-stage builds": run it in the lab and every check
# passes.
set -e
cd ~/hello
docker rm -f fat slim >/dev/null 2>&1 || true

cat > Dockerfile.fat <<'DOCKERFILE'
FROM berth/gcc:12-bookworm
WORKDIR /src
COPY hello.c .
RUN gcc -O2 -o /usr/local/bin/hello hello.c
CMD ["hello"]
DOCKERFILE
docker build -f Dockerfile.fat -t hello:fat .
docker run --name fat hello:fat

cat > Dockerfile <<'DOCKERFILE'
FROM berth/gcc:12-bookworm AS build
WORKDIR /src
COPY hello.c .
RUN gcc -static -Os -s -o /hello hello.c

FROM scratch
COPY --from=build /hello /hello
CMD ["/hello"]
DOCKERFILE
docker build -t hello:slim .
docker run --name slim hello:slim
docker images hello
docker history hello:slim

docker build --target build -t hello:build .
docker run --rm hello:build ls -l /hello
