#!/bin/sh
# The solution of "Images and layers": run it in the lab and every check passes.
set -e
docker rm -f painter >/dev/null 2>&1 || true
docker run --name painter busybox sh -c 'echo hello > /hello.txt; echo "learner:x:1000:1000::/home/learner:/bin/sh" >> /etc/passwd; rm /bin/vi'
docker diff painter
docker commit painter painted:v1
docker history painted:v1
docker commit --change 'CMD ["cat", "/hello.txt"]' painter painted:v2
docker run --rm painted:v2
docker tag painted:v2 painted:latest
docker images painted
docker rm -f release packages >/dev/null 2>&1 || true
docker run --name release debian:bookworm-slim cat /etc/os-release
docker run --name packages debian:bookworm-slim dpkg -l
docker run --rm debian:bookworm-slim sh -c 'dpkg -l | grep -c ^ii'
docker image inspect berth/gcc:12-bookworm --format '{{json .RootFS.Layers}}'
