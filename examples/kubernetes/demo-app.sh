#!/bin/sh
# The demo application of pod.yaml: busybox httpd serving /www on $PORT. On
# its stop signal it reports it (when $STOP_NOTIFY_URL is set: the podman
# kube play test's witness of the order) and stops the server.
mkdir -p /tmp/www && echo "hello from $(hostname)" > /tmp/www/index.html
busybox httpd -f -p "${PORT:-8080}" -h /tmp/www &
server=$!
stopped() {
  echo "demo-app: got SIGTERM"
  [ -n "${STOP_NOTIFY_URL:-}" ] && busybox wget -q -O /dev/null "$STOP_NOTIFY_URL"
  kill "$server"
  exit 0
}
trap stopped TERM
echo "demo-app: serving on port ${PORT:-8080}"
wait "$server"
