#!/usr/bin/env bash
# The golden path on one machine, with one command: starts a git server, the Backstage
# backend of tests/backstage/ and `scaffolder serve` with this example's app-config.yaml,
# runs the template against the local PostgreSQL, checks what it made on the servers
# that hold it, prints it, and stops everything it started.
#
#   examples/golden-path/run-local.sh
#
# Needs git, python3, node and npm (Backstage's packages are installed with `npm ci`
# into tests/backstage/ when missing), curl, and PostgreSQL on 127.0.0.1:5432 that
# lets the admin URL below create roles and databases. psql, when present, is used to
# show the database.
#
# Environment (all optional):
#   SCAFFOLDER          the scaffolder binary (default target/release/scaffolder,
#                       built with cargo when missing)
#   SERVICE             the service to create (default orders-<random>); its database
#                       is named after it, so each run needs a new name
#   POSTGRES_ADMIN_URL  default postgres://postgres@127.0.0.1:5432/postgres
#   POSTGRES_ADDRESS    the IP:port the database plugin may connect to (default: the
#                       admin URL's host and port)
#   KEEP_RUNNING=1      leave the servers running after the check, until Ctrl-C
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
scaffolder=${SCAFFOLDER:-$repo/target/release/scaffolder}
service=${SERVICE:-orders-$RANDOM$RANDOM}
admin_url=${POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
postgres_hostport=${admin_url#*://}
postgres_hostport=${postgres_hostport#*@}
postgres_hostport=${postgres_hostport%%/*}
postgres_address=${POSTGRES_ADDRESS:-$postgres_hostport}
# The callers' token, also Backstage's static token: catalog:register passes the
# caller's token on to the catalog.
token=golden-path-local-$RANDOM$RANDOM
git_token=golden-path-git-$RANDOM$RANDOM

say() { printf '%s\n' "$*" >&2; }
fail() {
  say "run-local.sh: $*"
  exit 1
}

for command in git python3 node npm curl; do
  command -v "$command" >/dev/null || fail "$command is needed; install it and run again"
done
[[ $service =~ ^[a-z][a-z0-9-]{1,40}$ ]] ||
  fail "SERVICE='$service' is not a service name: lower-case letters, digits and dashes, starting with a letter"
(exec 3<>"/dev/tcp/${postgres_address%:*}/${postgres_address##*:}") 2>/dev/null ||
  fail "nothing answers at $postgres_address: start PostgreSQL, or set POSTGRES_ADMIN_URL and POSTGRES_ADDRESS"

if [[ ! -x $scaffolder ]]; then
  [[ -z ${SCAFFOLDER:-} ]] || fail "SCAFFOLDER=$scaffolder is not an executable file"
  say "building $scaffolder (cargo build --release -p scaffolder; a few minutes the first time)"
  (cd "$repo" && cargo build --release -p scaffolder)
fi
backstage_dir=$repo/tests/backstage
if [[ ! -f $backstage_dir/node_modules/.package-lock.json ]]; then
  say "installing Backstage's packages in $backstage_dir (npm ci)"
  (cd "$backstage_dir" && npm ci --no-audit --no-fund >&2)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/golden-path.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until process $1 prints a line starting with $3 into file $2 (at most $4
# seconds) and prints the rest of that line.
wait_for_line() {
  local pid=$1 file=$2 prefix=$3 seconds=$4 name=$5 line
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
    if [[ -n $line ]]; then
      printf '%s\n' "${line#"$prefix"}"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$work"/*.log >&2 || true
      fail "$name exited before it was ready (its log is above)"
    fi
    sleep 0.2
  done
  tail -n 30 "$work"/*.log >&2 || true
  fail "$name was not ready after $seconds s (its log is above)"
}

# Reads a JSON document on stdin and prints the value at the path given as arguments.
json() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if isinstance(value, list) else value.get(key)
    if value is None:
        break
print("" if value is None else value if isinstance(value, str) else json.dumps(value))
' "$@"
}

# 1. The git server, with the empty repository the template publishes to.
mkdir -p "$work/git/team"
git init --quiet --bare --initial-branch=main "$work/git/team/$service.git"
git -C "$work/git/team/$service.git" config http.receivepack true
python3 "$here/git-server.py" --root "$work/git" --token "$git_token" \
  >"$work/git.out" 2>"$work/git.log" &
pids+=($!)
git_base=$(wait_for_line "$!" "$work/git.out" "git server listening on " 10 "the git server")
remote=$git_base/team/$service.git
say "git server:  $git_base (repository team/$service)"

# 2. Backstage's backend: its catalog knows the owning group, accepts our token and may
# read from loopback (tests/backstage/app-config.yaml).
cat >"$work/catalog.yaml" <<'YAML'
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
YAML
backstage_port=$(free_port)
BACKSTAGE_PORT=$backstage_port BACKSTAGE_TOKEN=$token BACKSTAGE_LOG_LEVEL=warn \
  BACKSTAGE_CATALOG_FILE=$work/catalog.yaml \
  node "$backstage_dir/backend.mjs" >"$work/backstage.out" 2>"$work/backstage.log" &
pids+=($!)
backstage=$(wait_for_line "$!" "$work/backstage.out" "backstage listening on " 180 "Backstage")
say "Backstage:   $backstage"

# 3. The scaffolder, configured by this example's app-config.yaml.
SCAFFOLDER_TOKEN=$token BACKSTAGE_BASE_URL=$backstage GIT_TOKEN=$git_token \
  GIT_ORIGIN=$git_base POSTGRES_ADMIN_URL=$admin_url POSTGRES_ADDRESS=$postgres_address \
  "$scaffolder" serve --port 0 --data-dir "$work/scaffolder" --templates "$here" \
  --config "$here/app-config.yaml" >"$work/scaffolder.out" 2>"$work/scaffolder.log" &
pids+=($!)
api=$(wait_for_line "$!" "$work/scaffolder.out" "scaffolder listening on " 60 "scaffolder serve")
say "scaffolder:  $api"

# 4. The template, as the Backstage frontend starts it.
request=$(printf '{"templateRef":"template:default/golden-path","values":{"name":"%s","owner":"group:default/team-a","remoteUrl":"%s"}}' \
  "$service" "$remote")
created=$(curl -sS -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "$request" "$api/v2/tasks")
task=$(json id <<<"$created")
[[ -n $task ]] || fail "the scaffolder did not create a task: $created"
say "task:        $task"
status=open
deadline=$((SECONDS + 300))
while [[ $status == open || $status == processing ]]; do
  ((SECONDS < deadline)) || fail "task $task still $status after 300 s"
  sleep 0.5
  status=$(curl -sS -H "Authorization: Bearer $token" "$api/v2/tasks/$task" | json status)
done
events=$(curl -sS -H "Authorization: Bearer $token" "$api/v2/tasks/$task/events")
if [[ $status != completed ]]; then
  python3 -c '
import json, sys
for event in json.load(sys.stdin):
    body = event.get("body", {})
    print(" ", body.get("stepId", "-"), body.get("message", ""))
' <<<"$events" >&2
  fail "task $task ended $status (its events are above)"
fi

# 5. What it made, read from the servers that hold it.
git clone --quiet "$remote" "$work/clone"
grep -q "name: $service" "$work/clone/catalog-info.yaml" ||
  fail "the pushed catalog-info.yaml does not name $service"
commit=$(git -C "$work/clone" log -1 --format='%h %s')
database=${service//-/_}
if command -v psql >/dev/null; then
  owner=$(psql "$admin_url" -tAc "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$database'")
  [[ -n $owner ]] || fail "PostgreSQL has no database $database"
  database_line="$database on $postgres_address, owned by the role $owner"
else
  database_line="$database on $postgres_address (not checked: no psql)"
fi
entity=""
deadline=$((SECONDS + 60))
until entity=$(curl -sSf -H "Authorization: Bearer $token" \
  "$backstage/api/catalog/entities/by-name/component/default/$service" 2>/dev/null); do
  ((SECONDS < deadline)) || fail "component:default/$service never appeared in the catalog"
  sleep 0.5
done
location=$(json metadata annotations backstage.io/managed-by-location <<<"$entity")

cat <<EOF
golden path: task $task completed
  repository  $remote (commit $commit)
  database    $database_line
  catalog     component:default/$service, read from ${location#url:}
EOF

if [[ ${KEEP_RUNNING:-0} == 1 ]]; then
  say "the servers keep running (token: $token); press Ctrl-C to stop them"
  wait
fi
