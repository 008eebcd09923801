#!/bin/sh
# The solution of "Volumes: data that outlives containers": run it in the lab and every check passes.
set -e
docker volume create fishnotes
docker run --rm -v fishnotes:/notes busybox sh -c 'echo "Blobfish live 600 to 1,200 metres deep." >> /notes/facts.txt'
docker run --rm -v fishnotes:/notes busybox sh -c 'echo "A blobfish is about 30 cm long." >> /notes/facts.txt'
docker run -d --name notes-web -p 8084:5000 -v fishnotes:/app/www/notes blobfish
docker run -d --name live -p 8085:5000 -v /root/app/www:/app/www blobfish
sed -i 's|<h1>Blobfish Facts</h1>|<h1>Blobfish Facts, live from my lab</h1>|' app/www/index.html
docker run -d --name gallery -p 8086:5000 -v /root/app/www:/app/www:ro blobfish
