#!/usr/bin/env bash
# Makes a private CA and one certificate per node for the cluster port's
# mutual TLS. Every node trusts only this CA: a peer without a certificate
# signed by it cannot join.
#
#   configs/cluster/make-certs.sh DIR node-1 node-2 node-3
#
# Keep ca.key offline; copy to each node its NAME.pem, NAME.key and ca.pem.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR NODE..." >&2; exit 2; }
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.pem -days 3650 \
    -subj "/CN=switchboard-cluster-ca" 2>/dev/null
  chmod 600 ca.key
fi
for node in "$@"; do
  openssl req -newkey rsa:3072 -nodes -keyout "$node.key" -out "$node.csr" \
    -subj "/CN=$node" 2>/dev/null
  openssl x509 -req -in "$node.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$node.pem" -days 825 2>/dev/null
  rm "$node.csr"
  chmod 600 "$node.key"
  echo "made $dir/$node.pem and $dir/$node.key"
done
