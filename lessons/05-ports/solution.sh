#!/bin/sh
# The solution of "Ports: let the world in": run it in the lab and every check passes.
set -e
docker run -d --name facts -p 80:5000 blobfish
docker run -d --name fish1 -p 8081:5000 blobfish
docker run -d --name fish2 -p 8082:5000 blobfish
docker run -d --name fish3 -p 8083:5000 blobfish
docker run -d --name lucky -p 5000 blobfish
docker port lucky
