#!/bin/sh
mkdir -p /www
echo "$VERSION from $(hostname)" > /www/index.html
exec httpd -f -p 80 -h /www
