#!/bin/sh
# The solution of "VMs vs containers": run it in the lab and every check passes.
set -e
docker rm -f lookout scribble capped hog >/dev/null 2>&1 || true
docker run -d --name lookout --hostname lookout busybox sleep 3600
docker run -d --name scribble busybox sh -c 'echo only mine > /tmp/note.txt; sleep 3600'
docker run -d --name capped --memory 64m busybox sleep 3600
docker run --name hog -m 16m busybox sh -c 'x=a; while true; do x="$x$x"; done' || echo "exit code $?"
# What the lesson shows along the way.
docker exec lookout hostname
docker exec lookout ps
docker run --rm busybox uname -r
time docker run --rm busybox true
docker images busybox
ls -l /proc/self/ns
docker exec lookout ls -l /proc/self/ns
docker inspect --format '{{.State.Pid}}' lookout
docker exec capped cat /proc/self/cgroup
docker inspect --format 'OOMKilled={{.State.OOMKilled}} exit={{.State.ExitCode}}' hog
docker run --rm busybox grep Cap /proc/self/status
docker run --rm busybox mount -t tmpfs none /mnt || echo "mount refused: $?"
docker run --rm busybox date -s 2000-01-01
