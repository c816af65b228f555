#!/usr/bin/env bash
# A local S3 endpoint for development: moto's server on 127.0.0.1 (MinIO works the same way).
#   infra/local_s3.sh [PORT]          prints the endpoint, then serves until Ctrl-C; in another shell:
#   export AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev AWS_DEFAULT_REGION=us-east-1
#   .venv/bin/python -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:9000').create_bucket(Bucket='videos')"
#   .venv/bin/pssr run s3://videos/in/ s3://videos/out/ --s3-endpoint-url http://127.0.0.1:9000
# Its data lives in memory: it is gone when the server stops.
set -euo pipefail
port="${1:-9000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
# The project's venv (make install puts moto[server] there), else whatever moto_server is on the PATH.
moto="$root/.venv/bin/moto_server"
[[ -x "$moto" ]] || moto="$(command -v moto_server)" || { echo "moto_server not found: run make install" >&2; exit 1; }
echo "S3 endpoint: http://127.0.0.1:$port"
exec "$moto" -H 127.0.0.1 -p "$port"
