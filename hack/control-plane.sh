#!/usr/bin/env bash
# control-plane.sh up|down|env DIR — a throw-away Kubernetes control plane on 127.0.0.1 for peapod's cluster
# tests: etcd (Debian's etcd-server) and kube-apiserver v1.20.2 (hack/kube-apiserver.sh), nothing else.
#
#   up DIR    start etcd and kube-apiserver (or do nothing if both already serve from DIR), wait for /readyz
#   down DIR  stop the processes whose pids are in DIR (TERM, then KILL after 15 s); deletes only the pid files
#   env DIR   print KUBECONFIG=DIR/kubeconfig
#
# Writes into DIR (all kept across down/up, so a restart reuses the data, keys and token):
#   kubeconfig                     admin kubeconfig (bearer token of user `admin`, group system:masters)
#   pki/ca.{crt,key}               a throw-away CA; pki/apiserver.{crt,key} the serving cert it signs (SANs:
#                                  127.0.0.1, localhost, kubernetes.default.svc...); a CA + leaf rather than
#                                  one self-signed leaf because rustls rejects a CA certificate as server cert
#   pki/sa.{key,pub}               service-account signing key pair (`kubectl create token` works)
#   tokens.csv                     --token-auth-file
#   ports                          etcd client/peer and apiserver ports, reused by the next `up` while free
#   etcd/                          etcd data; etcd.log, kube-apiserver.log; etcd.pid, kube-apiserver.pid
#
# What is not there: no kube-controller-manager or scheduler, so no garbage collection, no namespace
# finalisation (a deleted namespace stays Terminating), no ServiceAccount token Secrets (the ServiceAccount
# admission plugin is disabled; TokenRequest works once the ServiceAccount object exists), no Pods run.
# PEAPOD_CP_TIMEOUT (seconds, default 90) bounds the wait for readiness.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
timeout=${PEAPOD_CP_TIMEOUT:-90}

log() { echo "control-plane.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { die "usage: $0 up|down|env DIR"; }

(($# == 2)) || usage
cmd=$1
mkdir -p "$2" || die "cannot create $2"
dir=$(cd "$2" && pwd)

# pid_of NAME: the pid in DIR/NAME.pid if that process is alive and is ours (its command line names DIR).
pid_of() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }

# alive PID: the process exists and has not exited. A zombie counts as exited: whoever started us (a test
# process that is a child subreaper, say) may reap it only later, and `kill -0` succeeds on a zombie.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

pick_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 30000))
    if port_free "$p" && [[ " ${taken[*]-} " != *" $p "* ]]; then
      taken+=("$p")
      echo "$p"
      return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

choose_ports() {
  taken=()
  if [[ -f $dir/ports ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports"
    if port_free "$ETCD_PORT" && port_free "$ETCD_PEER_PORT" && port_free "$APISERVER_PORT"; then
      return 0
    fi
    log "ports from the last run are taken; picking new ones"
  fi
  ETCD_PORT=$(pick_port) && taken+=("$ETCD_PORT")
  ETCD_PEER_PORT=$(pick_port) && taken+=("$ETCD_PEER_PORT")
  APISERVER_PORT=$(pick_port)
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\n' \
    "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" >"$dir/ports"
}

make_pki() {
  local pki=$dir/pki
  [[ -f $pki/apiserver.crt && -f $pki/sa.pub && -f $dir/tokens.csv ]] && return 0
  log "generating CA, serving certificate, service-account keys and admin token in $dir"
  mkdir -p "$pki"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj /CN=peapod-test-ca -keyout "$pki/ca.key" -out "$pki/ca.crt" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj /CN=kube-apiserver -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
      extendedKeyUsage=serverAuth \
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local' \
      >"$pki/apiserver.ext"
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt"
    openssl genrsa -out "$pki/sa.key" 2048
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
    echo "$(openssl rand -hex 32),admin,admin,\"system:masters\"" >"$dir/tokens.csv"
  ) 2>"$dir/pki.log" || die "openssl failed: $(tail -n 5 "$dir/pki.log")"
  rm -f "$pki/apiserver.csr" "$pki/apiserver.ext"
}

write_kubeconfig() {
  local token ca
  token=$(cut -d, -f1 "$dir/tokens.csv")
  ca=$(base64 -w0 <"$dir/pki/ca.crt")
  (
    umask 077
    cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: peapod-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $token
contexts:
- name: peapod-test
  context: {cluster: peapod-test, user: admin, namespace: default}
current-context: peapod-test
EOF
  )
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

start_etcd() {
  local url=http://127.0.0.1:$ETCD_PORT peer=http://127.0.0.1:$ETCD_PEER_PORT
  setsid etcd --name peapod-test --data-dir "$dir/etcd" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "peapod-test=$peer" --initial-cluster-state new \
    --logger zap --log-level warn \
    </dev/null >>"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
}

start_apiserver() {
  local bin=$1 pki=$dir/pki
  setsid "$bin" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --insecure-port 0 --endpoint-reconciler-type none \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --cert-dir "$pki" \
    --token-auth-file "$dir/tokens.csv" --anonymous-auth=false \
    --authorization-mode RBAC \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --disable-admission-plugins ServiceAccount \
    --allow-privileged=true --profiling=false --v=1 \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
}

# ready: 0 when /readyz says "ok" and the namespace `default` exists (the bootstrap controller creates it a
# moment after /readyz turns ok; tests create objects there right away).
ready() {
  local token curl
  token=$(cut -d, -f1 "$dir/tokens.csv")
  curl=(curl -sS --max-time 5 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token")
  [[ $("${curl[@]}" "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null) == ok ]] || return 1
  [[ $("${curl[@]}" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$APISERVER_PORT/api/v1/namespaces/default" 2>/dev/null) == 200 ]]
}

# wait_ready: 0 once ready; 1 when etcd or the API server exited during the start (both are stopped then),
# with their logs' last lines on stderr; dies when they are still running but not ready after $timeout s.
wait_ready() {
  local deadline=$((SECONDS + timeout)) name
  until ready; do
    for name in etcd kube-apiserver; do
      pid_of "$name" >/dev/null || {
        tail -n 20 "$dir/$name.log" >&2
        stop_all
        failed=$name
        return 1
      }
    done
    if ((SECONDS >= deadline)); then
      tail -n 20 "$dir/kube-apiserver.log" >&2
      stop_all
      die "kube-apiserver not ready after $timeout s (log: $dir/kube-apiserver.log)"
    fi
    sleep 0.2
  done
}

stop_one() {
  local name=$1 pid deadline
  if pid=$(pid_of "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if alive "$pid"; then
      log "$name (pid $pid) ignored TERM for 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$dir/$name.pid"
}

stop_all() {
  stop_one kube-apiserver
  stop_one etcd
}

up() {
  for tool in etcd openssl curl ss setsid base64; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run hack/install-deps.sh test"
  done
  if pid_of etcd >/dev/null && pid_of kube-apiserver >/dev/null && [[ -f $dir/ports ]]; then
    # shellcheck source=/dev/null
    source "$dir/ports"
    if ready; then
      log "already up: https://127.0.0.1:$APISERVER_PORT"
      return 0
    fi
  fi
  stop_all
  local bin
  bin=$("$here/kube-apiserver.sh") || die "hack/kube-apiserver.sh failed"
  make_pki
  # A port seen free can be bound by another process before etcd or the API server binds it: start again
  # on new ports when that is why one of them exited, up to three times.
  local start=$SECONDS attempt failed logged
  for attempt in 1 2 3; do
    choose_ports
    write_kubeconfig
    logged="$(log_size etcd) $(log_size kube-apiserver)"
    start_etcd
    start_apiserver "$bin"
    if wait_ready; then
      log "up in $((SECONDS - start)) s: https://127.0.0.1:$APISERVER_PORT (KUBECONFIG=$dir/kubeconfig)"
      return 0
    fi
    # (no `grep -q`: it would stop reading, and under pipefail the writer's SIGPIPE would read as no match)
    if ! new_log_lines "$logged" | grep 'address already in use' >/dev/null; then
      die "$failed exited during start (log: $dir/$failed.log)"
    fi
    log "a port was taken during start (attempt $attempt); picking new ones"
    rm -f "$dir/ports"
  done
  die "$failed exited during start three times: ports taken (log: $dir/$failed.log)"
}

log_size() { stat -c %s "$dir/$1.log" 2>/dev/null || echo 0; }

# new_log_lines "ETCD_BYTES APISERVER_BYTES": what both logs gained since they had those sizes.
new_log_lines() {
  local sizes=($1)
  tail -c +"$((sizes[0] + 1))" "$dir/etcd.log" 2>/dev/null
  tail -c +"$((sizes[1] + 1))" "$dir/kube-apiserver.log" 2>/dev/null
}

case "$cmd" in
  up) up ;;
  down) stop_all ;;
  env) echo "KUBECONFIG=$dir/kubeconfig" ;;
  *) usage ;;
esac
