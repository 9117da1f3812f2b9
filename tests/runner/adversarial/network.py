# Tries: to reach the network: a public DNS server, and a service listening on the host's
# loopback (the test puts its port in HOST_PORT).
# Expect: completed
import socket

HOST_PORT = int("{HOST_PORT}")
for address in [("1.1.1.1", 53), ("127.0.0.1", HOST_PORT), ("8.8.8.8", 443)]:
    try:
        socket.create_connection(address, timeout=2).close()
        print("ESCAPED: connected to", address)
    except OSError as exc:
        print("blocked", address, type(exc).__name__)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("ESCAPED: resolved a public name")
except OSError:
    print("blocked dns")
