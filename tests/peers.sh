# Sourced by tests/run: makes sure every program the tests talk to is installed
# and running on 127.0.0.1, starting (and if need be installing) what is missing.
# Exports TEST_DATABASE_URL, MAILDEV_SMTP_URL, MAILDEV_API_URL, OIDC_ISSUER_URL,
# MOTO_URL, PDNS_API_URL, PDNS_DNS_ADDRESS, CADDY_ADMIN_URL, CADDY_HTTP_ADDRESS,
# REDIS_URL, LINUX_LAB, AXE_CORE_JS.
# Whatever this script starts, it stops on exit (see stop_peers).

PEERS_DIR="$PWD/target/peers"
mkdir -p "$PEERS_DIR"
STARTED_PIDS=()
STOP_PG=""

say() { printf 'tests/run: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then as_root apt-get -o DPkg::Lock::Timeout=600 update -qq; APT_UPDATED=1; fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds what
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  say "$3 did not come up on port $1"; return 1
}

pg_bin_dir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(command -v pg_ctl)"; return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  command -v psql >/dev/null || apt_install postgresql-client
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    psql "$TEST_DATABASE_URL" -qAtc 'SELECT 1' >/dev/null && return 0
    say "TEST_DATABASE_URL does not answer"; return 1
  fi
  local default="postgres://postgres@127.0.0.1:5432/postgres"
  if psql "$default" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    export TEST_DATABASE_URL="$default"; return 0
  fi
  # A stopped Debian cluster: start it.
  if command -v pg_lsclusters >/dev/null && ! port_open 5432; then
    local ver
    ver=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" {print $1; exit}')
    if [ -n "$ver" ]; then
      as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || true
      if psql "$default" -qAtc 'SELECT 1' >/dev/null 2>&1; then
        export TEST_DATABASE_URL="$default"; return 0
      fi
    fi
  fi
  # Otherwise a private, throwaway cluster for the tests (trust auth, loopback only).
  local bin dir=/tmp/switchboard-test-pg port=55432
  bin=$(pg_bin_dir)
  if [ -z "$bin" ]; then apt_install postgresql; bin=$(pg_bin_dir); fi
  local run=()
  if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    "${run[@]}" "$bin/initdb" -D "$dir" -U postgres -A trust --no-locale -E UTF8 >/dev/null
  fi
  say "starting a private PostgreSQL for the tests on 127.0.0.1:$port"
  "${run[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -s \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start
  STOP_PG="${run[*]} $bin/pg_ctl -D $dir -m fast -w -s stop"
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

ensure_maildev() {
  export MAILDEV_SMTP_URL="smtp://127.0.0.1:1025" MAILDEV_API_URL="http://127.0.0.1:1080"
  if port_open 1025 && port_open 1080; then return 0; fi
  command -v npm >/dev/null || apt_install nodejs npm
  local main="$PEERS_DIR/node_modules/.bin/maildev"
  if [ ! -f "$main" ]; then
    say "installing maildev (npm)"
    npm install --prefix "$PEERS_DIR" --no-audit --no-fund --silent maildev@3 >/dev/null
  fi
  rm -rf "$PEERS_DIR/maildev-mail" && mkdir -p "$PEERS_DIR/maildev-mail"
  "$main" --ip 127.0.0.1 --web-ip 127.0.0.1 -s 1025 -w 1080 \
    --mail-directory "$PEERS_DIR/maildev-mail" >"$PEERS_DIR/maildev.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 1080 20 maildev && wait_port 1025 5 maildev
}

ensure_oidc_provider() {
  export OIDC_ISSUER_URL="http://127.0.0.1:3000"
  if port_open 3000; then return 0; fi
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d "$PEERS_DIR/node_modules/oidc-provider" ]; then
    say "installing oidc-provider (npm)"
    npm install --prefix "$PEERS_DIR" --no-audit --no-fund --silent oidc-provider@9 >/dev/null
  fi
  # ES modules resolve packages next to the script: run a copy from there.
  cp tests/peers/oidc-provider.mjs "$PEERS_DIR/oidc-provider.mjs"
  PORT=3000 node "$PEERS_DIR/oidc-provider.mjs" >"$PEERS_DIR/oidc-provider.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 3000 20 oidc-provider
}

ensure_moto() {
  export MOTO_URL="http://127.0.0.1:5000"
  if port_open 5000; then return 0; fi
  local server
  server="$(command -v moto_server || true)"
  if [ -z "$server" ]; then
    server="$PEERS_DIR/moto/bin/moto_server"
    if [ ! -x "$server" ]; then
      say "installing moto (PyPI)"
      python3 -m venv "$PEERS_DIR/moto" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$PEERS_DIR/moto"; }
      "$PEERS_DIR/moto/bin/pip" install -q 'moto[server]>=5,<6'
    fi
  fi
  "$server" -H 127.0.0.1 -p 5000 >"$PEERS_DIR/moto.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 5000 30 moto
}

ensure_pdns() {
  export PDNS_API_URL="http://127.0.0.1:8081" PDNS_DNS_ADDRESS="127.0.0.1:5353"
  if port_open 8081; then return 0; fi
  command -v pdns_server >/dev/null || apt_install pdns-server pdns-backend-sqlite3 sqlite3
  local dir="$PEERS_DIR/pdns"
  rm -rf "$dir" && mkdir -p "$dir"
  sqlite3 "$dir/pdns.sqlite3" </usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
  sed "s#\${PDNS_DIR}#$dir#g" tests/peers/pdns.conf >"$dir/pdns.conf"
  /usr/sbin/pdns_server --config-dir="$dir" >"$PEERS_DIR/pdns.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 8081 20 PowerDNS
}

# Caddy with an admin API and one HTTP server, `switchboard`, whose routes the
# proxy provider manages.
ensure_caddy() {
  export CADDY_ADMIN_URL="http://127.0.0.1:2019" CADDY_HTTP_ADDRESS="127.0.0.1:8480"
  if port_open 2019; then return 0; fi
  command -v caddy >/dev/null || apt_install caddy
  local dir="$PEERS_DIR/caddy"
  rm -rf "$dir" && mkdir -p "$dir"
  XDG_DATA_HOME="$dir" XDG_CONFIG_HOME="$dir" caddy run --config "$PWD/tests/peers/caddy.json" >"$PEERS_DIR/caddy.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 2019 20 Caddy
}

# Redis, for the proxy provider's Ceryx-compatible route store.
ensure_redis() {
  export REDIS_URL="redis://127.0.0.1:6379"
  if port_open 6379; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no >"$PEERS_DIR/redis.log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_port 6379 20 Redis
}

# Network namespaces, nftables and userspace WireGuard for the linux provider's
# tests; they need root and /dev/net/tun, and run (LINUX_LAB=1) where those are.
ensure_linux_lab() {
  if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
    say "not root or no /dev/net/tun: the linux provider's tests will say they are skipped"
    return 0
  fi
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  command -v wg >/dev/null || missing+=(wireguard-tools)
  command -v wireguard-go >/dev/null || missing+=(wireguard-go)
  # The on-prem end of a cloud VPN: strongSwan with its userspace IPsec.
  command -v swanctl >/dev/null || missing+=(strongswan-swanctl)
  [ -x /usr/lib/ipsec/charon ] || missing+=(strongswan-charon)
  ls /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so >/dev/null 2>&1 || missing+=(libcharon-extra-plugins)
  # A host reached over SSH: the test runs its own sshd in a namespace.
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null || missing+=(openssh-client)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ -z "$APT_UPDATED" ]; then apt-get update -qq; APT_UPDATED=1; fi
    say "installing ${missing[*]}"
    # Without recommends: wireguard-tools would pull in a kernel image.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  export LINUX_LAB=1
}

ensure_chromium() {
  if ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || ! command -v "${CHROMEDRIVER:-chromedriver}" >/dev/null; then
    apt_install chromium chromium-driver
  fi
  # axe-core, which the browser tests run on every main page (accessibility).
  if [ -z "${AXE_CORE_JS:-}" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    if [ ! -f "$PEERS_DIR/node_modules/axe-core/axe.min.js" ]; then
      say "installing axe-core (npm)"
      npm install --prefix "$PEERS_DIR" --no-audit --no-fund --silent axe-core@4 >/dev/null
    fi
    export AXE_CORE_JS="$PEERS_DIR/node_modules/axe-core/axe.min.js"
  fi
}

stop_peers() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$STOP_PG" ]; then $STOP_PG || true; fi
}
