#!/bin/sh
# The solution of "Dockerfile and docker build": run it in the lab and every
# check passes.
set -e
cd ~/app
cat > Dockerfile <<'DOCKERFILE'
FROM busybox
WORKDIR /app
COPY . /app
EXPOSE 5000
CMD ["httpd", "-f", "-p", "5000", "-h", "/app/www"]
DOCKERFILE
docker rm -f blobfish blobfish2 >/dev/null 2>&1 || true
docker build -t blobfish:v1 .
docker history blobfish:v1
docker run -d --name blobfish blobfish:v1
sleep 1
docker exec blobfish wget -qO- http://localhost:5000/ | grep 'Blobfish Facts'
docker exec blobfish wget -qO- http://localhost:5000/cgi-bin/fact
docker build -t blobfish:v1 . | grep 'Using cache'
echo "In 2013 the blobfish was voted the world's ugliest animal." >> www/facts.txt
docker build -t blobfish:v2 .
docker run -d --name blobfish2 blobfish:v2
docker exec blobfish2 tail -1 /app/www/facts.txt
