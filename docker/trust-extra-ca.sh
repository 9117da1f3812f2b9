# Sourced by the build stages (never a final one), with the build context mounted at /context:
# trust docker/extra-ca/*.crt for pip and npm, when there are any (hosts whose HTTPS goes through
# a TLS-intercepting proxy). The certificates are read from the mount and enter no image layer.
for crt in /context/docker/extra-ca/*.crt; do
  if [ -f "$crt" ]; then
    cat /etc/ssl/certs/ca-certificates.crt /context/docker/extra-ca/*.crt >/tmp/ca-bundle.pem \
      2>/dev/null || cat /context/docker/extra-ca/*.crt >/tmp/ca-bundle.pem
    export PIP_CERT=/tmp/ca-bundle.pem NODE_EXTRA_CA_CERTS=/tmp/ca-bundle.pem
  fi
  break
done
