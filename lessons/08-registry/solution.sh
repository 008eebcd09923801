#!/bin/sh
# The solution of "Ship it: tags and a registry": run it in the lab and every check passes.
set -e
docker tag blobfish blobfish:v1
sed -i 's/release v1/release v2/' app/www/index.html
echo "New in v2: a blobfish has no swim bladder; its jelly body does the floating." >> app/www/facts.txt
docker build -t blobfish:v2 app
docker tag blobfish:v2 blobfish:latest
docker tag blobfish:v1 registry.local:5000/blobfish:v1
docker tag blobfish:v2 registry.local:5000/blobfish:v2
docker tag blobfish:latest registry.local:5000/blobfish:latest
docker push registry.local:5000/blobfish:v1
docker push registry.local:5000/blobfish:v2
docker push registry.local:5000/blobfish:latest
docker rmi registry.local:5000/blobfish:v1 registry.local:5000/blobfish:v2 registry.local:5000/blobfish:latest
docker pull registry.local:5000/blobfish:v2
docker run -d --name fish-v2 -p 8088:5000 registry.local:5000/blobfish:v2
docker stop fish-v2
docker pull registry.local:5000/blobfish:v1
docker run -d --name fish-v1 -p 8088:5000 registry.local:5000/blobfish:v1
