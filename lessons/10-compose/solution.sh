#!/bin/sh
# The solution of "Compose: an app of several services": run it in the lab
# and every check passes.
set -e
mkdir -p ~/facts && cd ~/facts
cp ~/app/www/facts.txt .
cat > compose.yaml <<'YAML'
services:
  facts:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes:
      - ./facts.txt:/srv/facts.txt:ro
    networks: [backend]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost/facts.txt"]
      interval: 2s
      retries: 10
  worker:
    image: busybox
    command: ["sh", "-c", "while true; do wget -q -O - http://facts/facts.txt | shuf -n 1 > /site/index.html; sleep 2; done"]
    environment:
      - FACT_SOURCE=http://facts/facts.txt
    volumes:
      - site:/site
    networks: [backend]
    depends_on:
      facts:
        condition: service_healthy
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/site"]
    volumes:
      - site:/site:ro
    ports:
      - "8080:80"
    depends_on: [worker]
networks:
  backend:
volumes:
  site:
YAML
docker compose up -d --wait
docker compose ps
sleep 3
docker compose logs facts
docker compose exec web wget -q -O - http://localhost/
docker compose up -d --scale worker=2 --wait
docker compose ps worker
