#!/bin/sh
# The solution of "Healthchecks": run it in the lab and every check passes.
set -e
docker swarm leave --force >/dev/null 2>&1 || true
docker rm -f pulse checked sickly unchecked >/dev/null 2>&1 || true
docker run -d --name pulse --health-cmd 'wget -q -O /dev/null http://localhost:5000/ || exit 1' --health-interval 2s --health-timeout 2s --health-retries 3 blobfish
docker ps
mkdir -p ~/checked
printf '%s\n' 'FROM blobfish' 'HEALTHCHECK --interval=2s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://localhost:5000/ || exit 1' > ~/checked/Dockerfile
docker build -t blobfish:checked ~/checked
docker run -d --name checked blobfish:checked
docker run -d --name sickly --health-cmd 'wget -q -O /dev/null http://localhost:5000/missing.html' --health-interval 1s --health-retries 2 blobfish
docker run -d --name unchecked --no-healthcheck blobfish:checked
# What the lesson shows along the way.
sleep 4
docker ps --format '{{.Names}}: {{.Status}}'
docker inspect --format '{{.State.Health.Status}}' pulse
docker inspect --format '{{json .State.Health}}' sickly
docker history blobfish:checked
docker inspect --format '{{json .Config.Healthcheck}}' blobfish:checked
docker swarm init
docker service create --name steady --replicas 2 --health-cmd 'wget -q -O /dev/null http://localhost:5000/ || exit 1' --health-interval 2s blobfish
docker service ps steady
docker service update --health-cmd 'wget -q -O /dev/null http://localhost:5000/missing.html' --health-retries 1 --update-failure-action rollback --update-monitor 10s steady || echo "update exit code $?"
docker service inspect --format '{{.UpdateStatus.State}}: {{.UpdateStatus.Message}}' steady
docker service ps steady
