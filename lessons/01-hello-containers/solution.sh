#!/bin/sh
# The solution of "Hello, containers": run it in the lab and every check passes.
set -e
docker rm -f web >/dev/null 2>&1 || true
docker run -d --name web -p 8080:80 busybox sh -c 'mkdir -p /www && echo "hello from berth" > /www/index.html && httpd -f -p 80 -h /www'
docker volume create notes
docker run --rm -v notes:/notes busybox sh -c 'echo remember me > /notes/todo.txt'
