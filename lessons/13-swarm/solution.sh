#!/bin/sh
# The solution of "Swarm mode". It runs on three nodes: each part starts
# with a "#@ nodeN" line and goes to that node's terminal, in order
# (tests/course_swarm.rs types each part where it belongs). "$JOIN" is the
# `docker swarm join --token ...` line that `docker swarm join-token worker`
# printed on node1, pasted into node2 and node3 as the lesson says.
#@ node1
docker swarm init
#@ node2
$JOIN
#@ node3
$JOIN
#@ node1
until [ "$(docker node ls -q | wc -l)" -eq 3 ]; do sleep 1; done
cd /root/web
docker build -t registry.local:5000/web:v1 .
docker push registry.local:5000/web:v1
docker service create --name web --replicas 3 -p 8080:80 registry.local:5000/web:v1
a=$(wget -qO- localhost:8080)
b=$(wget -qO- localhost:8080)
echo "$a / $b"
[ "$a" != "$b" ]
docker service scale web=5
docker build --build-arg VERSION=v2 -t registry.local:5000/web:v2 .
docker push registry.local:5000/web:v2
docker service update --update-parallelism 1 --update-delay 5s --image registry.local:5000/web:v2 web
docker service ps web
wget -qO- localhost:8080 | grep v2
docker node update --availability drain node3
until [ -z "$(docker node ps node3 --filter desired-state=running -q)" ]; do sleep 1; done
until docker service ls --filter name=web | grep -q ' 5/5 '; do sleep 1; done
docker service ps web
docker service rollback web
docker service ps web
wget -qO- localhost:8080 | grep v1
