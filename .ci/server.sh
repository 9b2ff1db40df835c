# Sourced by the CI scripts that need a live server: `start_server BINARY USERNAME` creates a
# temporary database (SQLite, or a fresh database on the PostgreSQL server at $CI_POSTGRES_URL or
# on the MySQL/MariaDB server at $CI_MYSQL_URL when one is set, dropped on exit) with a superuser
# USERNAME, starts BINARY on a free loopback port and waits until it is ready. It sets $work (a
# temporary directory, removed on exit), $port, $password and $server_pid; the server's log is
# $work/server.log. Hashing is cheap on purpose: the callers test the contract, not Argon2.

work=$(mktemp -d)
server_pid=""
postgres_database=""
mysql_database=""

# Runs SQL statements on the MySQL/MariaDB server at $CI_MYSQL_URL
# (mysql://USER[:PASSWORD]@HOST[:PORT]/DB), with the `mariadb` client, over TCP.
mysql_on_server() {
    local rest=${CI_MYSQL_URL#mysql://} userinfo hostport user password="" host port=3306
    userinfo=${rest%%@*}
    hostport=${rest#*@}
    hostport=${hostport%%/*}
    user=${userinfo%%:*}
    if [ "$userinfo" != "$user" ]; then password=${userinfo#*:}; fi
    host=${hostport%%:*}
    if [ "$hostport" != "$host" ]; then port=${hostport##*:}; fi
    MYSQL_PWD=$password mariadb --protocol=tcp -h "$host" -P "$port" -u "$user" -e "$1"
}

stop_server() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [ -n "$postgres_database" ]; then
        psql -q "$CI_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $postgres_database WITH (FORCE)" || true
    fi
    if [ -n "$mysql_database" ]; then
        mysql_on_server "SET SESSION lock_wait_timeout = 10; DROP DATABASE IF EXISTS $mysql_database" || true
    fi
    rm -rf "$work"
}
trap stop_server EXIT

start_server() {
    local binary=$1 username=$2
    if [ -n "${CI_POSTGRES_URL:-}" ] && [ -n "${CI_MYSQL_URL:-}" ]; then
        echo "set CI_POSTGRES_URL or CI_MYSQL_URL, not both" >&2
        return 1
    fi
    if [ -n "${CI_POSTGRES_URL:-}" ]; then
        postgres_database="station_ci_$$_$RANDOM"
        psql -q "$CI_POSTGRES_URL" -c "CREATE DATABASE $postgres_database"
        export DATABASE_URL="${CI_POSTGRES_URL%/*}/$postgres_database"
    elif [ -n "${CI_MYSQL_URL:-}" ]; then
        mysql_database="station_ci_$$_$RANDOM"
        mysql_on_server "CREATE DATABASE $mysql_database"
        export DATABASE_URL="${CI_MYSQL_URL%/*}/$mysql_database"
    else
        export DATABASE_URL="sqlite://$work/ci.db"
    fi
    export STATION_ARGON2_MEMORY_KIB=64 STATION_ARGON2_ITERATIONS=1
    password="$username-$(date +%s)-$RANDOM"
    echo "$password" | "$binary" createsuperuser --username "$username" >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    RUST_LOG=warn "$binary" serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null
}

# Fails when the server logged one of our errors or a panic.
server_log_is_clean() {
    if grep -E 'ERROR station_api|panicked' "$work/server.log"; then
        echo "the server logged errors" >&2
        return 1
    fi
}
