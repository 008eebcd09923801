#!/bin/sh
# The solution of "Networks: containers that talk": run it in the lab and every check passes.
set -e
docker network create fishnet
docker run -d --name fishapp --network fishnet blobfish
docker run -d --name visitor --network fishnet busybox sleep 3600
docker network create island
docker run -d --name stranger --network island busybox sleep 3600
