#!/bin/sh
# The solution of "Running and managing containers": run it in the lab and
# every check passes (phoenix needs a few seconds to restart three times).
set -e
docker rm -f ticker polite frozen phoenix >/dev/null 2>&1 || true
docker run -d --name ticker busybox sh -c 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done'
docker exec ticker sh -c 'echo I was here > /tmp/visited'
docker run -d --name polite busybox sh -c 'trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 1; done'
sleep 1
docker stop polite
docker logs polite
docker run -d --name frozen busybox sleep 3600
docker pause frozen
docker run -d --name phoenix --restart always busybox sh -c 'echo run >> /runs; echo "run $(wc -l < /runs)"; sleep 2; exit 1'
sleep 4
docker logs ticker
docker ps -a
