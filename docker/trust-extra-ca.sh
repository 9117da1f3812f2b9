# Sourced by the build stages (never the final ones): trust docker/extra-ca/*.crt, copied to
# /tmp/extra-ca, for pip and npm, when there are any (hosts behind a TLS-intercepting proxy).
for crt in /tmp/extra-ca/*.crt; do
  if [ -f "$crt" ]; then
    cat /etc/ssl/certs/ca-certificates.crt /tmp/extra-ca/*.crt >/tmp/ca-bundle.pem 2>/dev/null ||
      cat /tmp/extra-ca/*.crt >/tmp/ca-bundle.pem
    export PIP_CERT=/tmp/ca-bundle.pem NODE_EXTRA_CA_CERTS=/tmp/ca-bundle.pem
  fi
  break
done
