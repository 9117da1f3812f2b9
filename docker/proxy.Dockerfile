# torchdojo's reverse proxy: nginx from Debian's package, in front of the web replicas. It passes
# every request to one of them (docker-compose's DNS names every replica of `web`), streams the
# server-sent events unbuffered, and sets the forwarded headers the web app believes from it
# alone. TLS: docs/deploy.md ("HTTPS") mounts a certificate and turns on the 8443 server.
FROM debian:12.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/conf.d/default.conf \
 && useradd --uid 10002 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dojo-proxy
COPY docker/nginx.conf /etc/nginx/nginx.conf
USER 10002:10002
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
