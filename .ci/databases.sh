# Sourced by .ci/run: makes sure the local PostgreSQL and MariaDB servers are running (installing
# them from Debian's packages if this machine has none, starting them if they are down) and
# exports what the test suite needs to use them: TEST_POSTGRES_URL and TEST_MYSQL_URL (so every
# black-box test also runs on both engines) and the commands the outage tests use to stop and
# start each server. A suite asked for here fails if it cannot connect; nothing is skipped.

postgres_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

ensure_postgres() {
    if [ -z "$(postgres_version)" ]; then
        echo "installing PostgreSQL from Debian's packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    fi
    local version
    version=$(postgres_version)
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    pg_isready -h 127.0.0.1 -p 5432
    export TEST_POSTGRES_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    export TEST_POSTGRES_STOP=${TEST_POSTGRES_STOP:-"pg_ctlcluster --skip-systemctl-redirect $version main stop -m fast"}
    export TEST_POSTGRES_START=${TEST_POSTGRES_START:-"pg_ctlcluster --skip-systemctl-redirect $version main start"}
    psql -qAt "$TEST_POSTGRES_URL" -c 'SELECT version()'
}

mariadb_answers() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

ensure_mariadb() {
    if [ ! -x /usr/sbin/mariadbd ]; then
        echo "installing MariaDB from Debian's packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >/dev/null
    fi
    local start="start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
    if ! mariadb_answers; then $start; fi
    for _ in $(seq 1 60); do mariadb_answers && break; sleep 0.5; done
    mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping
    export TEST_MYSQL_URL=${TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/mysql}
    export TEST_MYSQL_STOP=${TEST_MYSQL_STOP:-"mariadb-admin -uroot shutdown"}
    export TEST_MYSQL_START=${TEST_MYSQL_START:-"$start"}
    mariadb --protocol=tcp -h 127.0.0.1 -uroot -Nse 'SELECT VERSION()'
}

ensure_postgres
ensure_mariadb
