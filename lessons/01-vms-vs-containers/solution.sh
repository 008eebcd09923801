#!/bin/sh
# The solution of "VMs vs containers": run it in the lab and every check passes.
set -e
docker rm -f lookout scribble capped >/dev/null 2>&1 || true
docker run -d --name lookout --hostname lookout busybox sleep 3600
docker run -d --name scribble busybox sh -c 'echo only mine > /tmp/note.txt; sleep 3600'
docker run -d --name capped --memory 64m busybox sleep 3600
# What the lesson shows along the way.
docker exec lookout hostname
docker exec lookout ps
docker run --rm busybox uname -r
time docker run --rm busybox true
docker images busybox
