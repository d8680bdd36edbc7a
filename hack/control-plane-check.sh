#!/usr/bin/env bash
# control-plane-check.sh DIR [KUBECTL] — smoke-test a control plane started by `hack/control-plane.sh up DIR`.
#
# With the admin kubeconfig: list namespaces; create a namespace, a ServiceAccount and a token for it
# (`kubectl create token`, the TokenRequest API); check RBAC denies that token until a Role grants it, and
# still denies what the Role does not grant; apply a CRD and a custom resource, client-side and server-side,
# and write its status subresource. KUBECTL defaults to `kubectl` on PATH.
# Writes only DIR/check-sa.kubeconfig and objects in the namespace peapod-check-<random> (left behind: with no
# namespace controller a deleted namespace would only stay Terminating) and the CRD checks.peapod-check.dev.
# Exits non-zero on the first failed check.
set -euo pipefail

log() { echo "control-plane-check.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

(($# >= 1 && $# <= 2)) || die "usage: $0 DIR [KUBECTL]"
dir=$(cd "$1" && pwd)
kubectl=${2:-kubectl}
export KUBECONFIG=$dir/kubeconfig
[[ -f $KUBECONFIG ]] || die "$KUBECONFIG missing: run hack/control-plane.sh up $dir"
k() { "$kubectl" "$@"; }
ns=peapod-check-$RANDOM$RANDOM
sa_kubeconfig=$dir/check-sa.kubeconfig
passed=0

ok() {
  passed=$((passed + 1))
  log "ok: $*"
}

# expect_denied DESC CMD...: CMD must fail with a Forbidden error.
expect_denied() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then die "$desc: allowed, want forbidden"; fi
  [[ $out == *orbidden* ]] || die "$desc: want forbidden, got: $out"
  ok "$desc is forbidden"
}

log "kubectl $(k version --client -o json 2>/dev/null | jq -r .clientVersion.gitVersion) against server $(k get --raw /version | jq -r .gitVersion)"
k get ns kube-system >/dev/null || die "get ns with the admin kubeconfig"
ok "admin lists namespaces"

k create namespace "$ns" >/dev/null || die "create namespace $ns"
k -n "$ns" create serviceaccount checker >/dev/null || die "create serviceaccount"
token=$(k -n "$ns" create token checker --duration 10m) || die "kubectl create token"
[[ $token == ey* ]] || die "kubectl create token printed no JWT: $token"
ok "kubectl create token for $ns/checker"

server=$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')
k config --kubeconfig "$sa_kubeconfig" set-cluster c --server "$server" \
  --certificate-authority "$dir/pki/ca.crt" --embed-certs >/dev/null
k config --kubeconfig "$sa_kubeconfig" set-credentials sa --token "$token" >/dev/null
k config --kubeconfig "$sa_kubeconfig" set-context c --cluster c --user sa --namespace "$ns" >/dev/null
k config --kubeconfig "$sa_kubeconfig" use-context c >/dev/null
sa() { "$kubectl" --kubeconfig "$sa_kubeconfig" "$@"; }

expect_denied "token: list configmaps before any Role" sa get configmaps
k -n "$ns" create role cm-reader --verb get,list --resource configmaps >/dev/null || die "create role"
k -n "$ns" create rolebinding cm-reader --role cm-reader --serviceaccount "$ns:checker" >/dev/null \
  || die "create rolebinding"
out=$(sa get configmaps 2>&1) || die "token: list configmaps after the RoleBinding: $out"
ok "token lists configmaps in $ns once the Role allows it"
expect_denied "token: list secrets in $ns" sa get secrets
expect_denied "token: list configmaps in kube-system" sa -n kube-system get configmaps
[[ $(sa auth can-i create configmaps 2>/dev/null || true) == no ]] || die "auth can-i create configmaps: want no"
ok "auth can-i agrees"

k apply -f - >/dev/null <<'EOF' || die "apply CRD"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: checks.peapod-check.dev}
spec:
  group: peapod-check.dev
  scope: Namespaced
  names: {plural: checks, singular: check, kind: Check, shortNames: [chk]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties: {size: {type: integer, minimum: 1}}
          status:
            type: object
            properties: {phase: {type: string}}
EOF
k wait --for condition=Established --timeout 30s crd/checks.peapod-check.dev >/dev/null || die "CRD not Established"
ok "CRD applied and Established"

cr() { printf 'apiVersion: peapod-check.dev/v1alpha1\nkind: Check\nmetadata: {name: %s, namespace: %s}\nspec: {size: %s}\n' "$@"; }
cr one "$ns" 1 | k apply -f - >/dev/null || die "client-side apply of a custom resource"
cr two "$ns" 2 | k apply --server-side --field-manager peapod-check -f - >/dev/null \
  || die "server-side apply of a custom resource"
if out=$(cr bad "$ns" 0 | k apply -f - 2>&1); then die "CR with spec.size 0 accepted"; fi
[[ $out == *spec.size* ]] || die "invalid CR: want an error naming spec.size, got: $out"
ok "custom resources apply (client- and server-side); schema rejects spec.size 0"

k -n "$ns" patch check one --subresource status --type merge -p '{"status":{"phase":"Running"}}' >/dev/null \
  || die "patch the status subresource"
[[ $(k -n "$ns" get check one -o jsonpath='{.status.phase}') == Running ]] || die "status.phase not written"
[[ $(k -n "$ns" get chk one --no-headers | awk '{print $2}') == Running ]] || die "printer column Phase"
ok "status subresource and printer column"

echo "control-plane-check: $passed passed, 0 failed"
