#!/usr/bin/env bash
# Makes a demo CA and a server certificate for localhost / 127.0.0.1 signed by it, with the
# openssl CLI, in DIR (default .certs/ next to this script; gitignored). Keeps existing files.
#   ca.pem             the CA certificate: what clients trust (ws `ca`, NODE_EXTRA_CA_CERTS)
#   server.pem, server-key.pem   wsbridge's tls_cert / tls_key
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/.certs}"
mkdir -p "$dir"
cd "$dir"
[[ -s server.pem && -s server-key.pem && -s ca.pem ]] && exit 0

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=wsbridge demo CA" -keyout ca-key.pem -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout server-key.pem -out server.csr 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca-key.pem server-key.pem
echo "certificates in $dir: ca.pem (trust this), server.pem + server-key.pem (wsbridge)"
