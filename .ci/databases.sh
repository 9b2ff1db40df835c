# Sourced by .ci/run: makes sure the local PostgreSQL and MariaDB servers are running (installing
# them from Debian's packages if this machine has none, starting them if they are down) and
# exports what the test suite needs to use them: TEST_POSTGRES_URL and TEST_MYSQL_URL (so every
# black-box test also runs on both engines) and the commands the outage tests use to stop and
# start each server. A suite asked for here fails if it cannot connect; nothing is skipped.

postgres_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

postgres_answers() { pg_isready -q -h 127.0.0.1 -p 5432; }

# Waits up to two minutes for `$1` to succeed (a server still recovering after a crash can take a
# while); prints `$2` and fails if it never does.
wait_for() {
    local check=$1 what=$2
    for _ in $(seq 1 240); do
        if $check; then return 0; fi
        sleep 0.5
    done
    echo "$what did not come up within 2 minutes" >&2
    return 1
}

ensure_postgres() {
    if [ -z "$(postgres_version)" ]; then
        echo "installing PostgreSQL from Debian's packages"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
        # Debian's default asks for a password on 127.0.0.1; the tests connect as postgres without one.
        sed -i '1i host all all 127.0.0.1/32 trust' "/etc/postgresql/$(postgres_version)/main/pg_hba.conf"
    fi
    local version
    version=$(postgres_version)
    if ! postgres_answers; then
        # Fails when the cluster is already starting up; the wait below is what decides.
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    if ! wait_for postgres_answers "PostgreSQL $version"; then
        pg_lsclusters >&2 || true
        tail -n 20 "/var/log/postgresql/postgresql-$version-main.log" >&2 || true
        return 1
    fi
    export TEST_POSTGRES_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    export TEST_POSTGRES_STOP=${TEST_POSTGRES_STOP:-"pg_ctlcluster --skip-systemctl-redirect $version main stop -m fast"}
    export TEST_POSTGRES_START=${TEST_POSTGRES_START:-"pg_ctlcluster --skip-systemctl-redirect $version main start"}
    psql -qAt "$TEST_POSTGRES_URL" -c 'SELECT version()'
}

mariadb_answers() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

ensure_mariadb() {
    local fresh=""
    if [ ! -x /usr/sbin/mariadbd ]; then
        echo "installing MariaDB from Debian's packages"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >/dev/null
        fresh=yes
    fi
    # The socket directory lives on a tmpfs that a reboot empties.
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
    local start="start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
    if ! mariadb_answers; then $start; fi
    if ! wait_for mariadb_answers "MariaDB"; then
        tail -n 20 /var/log/mysql/error.log >&2 2>/dev/null || true
        return 1
    fi
    if [ -n "$fresh" ]; then
        # A fresh Debian MariaDB lets root in only over the socket (unix_socket); the tests
        # connect over TCP without a password.
        mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
    fi
    export TEST_MYSQL_URL=${TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/mysql}
    export TEST_MYSQL_STOP=${TEST_MYSQL_STOP:-"mariadb-admin -uroot shutdown"}
    export TEST_MYSQL_START=${TEST_MYSQL_START:-"$start"}
    mariadb --protocol=tcp -h 127.0.0.1 -uroot -Nse 'SELECT VERSION()'
}

ensure_postgres
ensure_mariadb
