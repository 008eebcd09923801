#!/bin/sh
# The solution of "Best practices": run it in the lab and every check passes.
set -e
docker rm -f tidy >/dev/null 2>&1 || true
cd ~/tidy
# The careless image first: the whole context goes in.
printf '%s\n' 'FROM busybox' 'COPY . /app' 'CMD ["httpd", "-f", "-p", "5000", "-h", "/app/www"]' > Dockerfile
docker build -t tidy:v1 .
docker run --rm tidy:v1 ls -la /app
printf '%s\n' '*.log' 'secret.env' '.dockerignore' 'Dockerfile' > .dockerignore
printf '%s\n' '# Blobfish notes: busybox'"'"'s web server, run by an unprivileged user.' 'FROM busybox' 'RUN echo '"'"'app:x:1000:1000:app:/app:/bin/sh'"'"' >> /etc/passwd && echo '"'"'app:x:1000:'"'"' >> /etc/group' 'COPY www /app/www' 'USER app' 'EXPOSE 5000' 'CMD ["httpd", "-f", "-p", "5000", "-h", "/app/www"]' > Dockerfile
docker build -t tidy:v2 .
echo '<p>Edited: rebuilt in a moment.</p>' >> www/index.html
docker build -t tidy:v2 .
docker images tidy
mkdir -p ~/leaky
printf 'FROM busybox\nENV DB_PASSWORD=hunter2\n' > ~/leaky/Dockerfile
docker build -t leaky ~/leaky
docker history leaky
docker run -d --name tidy -p 8091:5000 -v /root/tidy/secret.env:/run/secrets/db.env:ro tidy:v2
docker exec tidy id
docker exec tidy cat /run/secrets/db.env
[ "$(docker history --no-trunc tidy:v2 | grep -c hunter2)" = 0 ]
