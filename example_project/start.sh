#!/bin/sh
# Container and App Runner entry point: apply migrations (unless told not to), then hand the process to gunicorn.
# With several instances, turn DJANGO_MIGRATE_ON_START off and run `manage.py migrate` once per deployment instead
# (an ECS one-off task, or a CI step with database access).
set -eu
cd "$(dirname "$0")"
case "${DJANGO_MIGRATE_ON_START:-true}" in
    true|1|yes|on) python manage.py migrate --noinput ;;
    false|0|no|off) ;;
    *) echo "DJANGO_MIGRATE_ON_START=${DJANGO_MIGRATE_ON_START} is not a boolean" >&2; exit 2 ;;
esac
exec gunicorn --config gunicorn.conf.py example_project.wsgi
