#!/usr/bin/env bash
# lint-chart.sh — lint the Helm chart charts/peapod and the Dockerfile, offline. Checks, in order:
#   1. the chart's CRD copy is byte-identical to crds/peapod.dev_podgroups.yaml (the generated one);
#   2. `helm lint --strict` with the default values and with charts/peapod/ci/all-values.yaml (every
#      optional part on), and that values.schema.json rejects bad values;
#   3. `helm template --include-crds | kubernetes-validate --strict` for a matrix of Kubernetes versions:
#      1.20 (the API server the cluster tests run; kubernetes-validate's oldest schemas are 1.25, so 1.20
#      renderings are validated against 1.25), 1.30 (the first with ValidatingAdmissionPolicy v1) and 1.37
#      (the newest kubernetes-validate ships), and that version-dependent parts render only where they
#      exist (DaemonSet maxSurge from 1.22, the ValidatingAdmissionPolicy only when enabled and served);
#   4. `hadolint Dockerfile`.
# Prints one line per check and "N passed, M failed"; exits non-zero when any check failed. Installs nothing
# itself: the tools come from hack/helm.sh and hack/lint-tools.sh (cached after their first run).
set -euo pipefail

cd "$(dirname "$0")/.."
readonly CHART=charts/peapod
readonly ALL_VALUES=$CHART/ci/all-values.yaml
readonly VAP_API=admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy
readonly OLDEST_SCHEMAS=1.25.0 # the oldest version kubernetes-validate 1.37.0 has schemas for
readonly NEWEST_SCHEMAS=1.37.0

log() { echo "lint-chart.sh: $*" >&2; }

HELM=$(hack/helm.sh)
eval "$(hack/lint-tools.sh)"
: "${KUBERNETES_VALIDATE:?hack/lint-tools.sh printed no KUBERNETES_VALIDATE}" "${HADOLINT:?hack/lint-tools.sh printed no HADOLINT}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
# check NAME COMMAND...: runs COMMAND (a program or a function below), shows its output only when it fails.
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "PASS  $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
    sed 's/^/      /' "$work/out"
  fi
}

# fails COMMAND...: succeeds when COMMAND fails.
fails() { ! "$@"; }

# rejects NAME HELM_LINT_ARGS...: helm lint --strict must fail (the schema or a template must refuse).
rejects() {
  local name=$1
  shift
  check "schema rejects $name" fails "$HELM" lint --strict "$CHART" "$@"
}

# render_and_validate OUT KUBE_VERSION SCHEMA_VERSION [HELM_TEMPLATE_ARGS...]
render_and_validate() {
  local out=$1 kube=$2 schemas=$3
  shift 3
  "$HELM" template peapod "$CHART" --namespace peapod-system --kube-version "$kube" "$@" >"$out" \
    && "$KUBERNETES_VALIDATE" -k "$schemas" --strict --quiet "$out" "$CHART"/crds/*.yaml
}

# validate NAME KUBE_VERSION SCHEMA_VERSION [HELM_TEMPLATE_ARGS...]: render, then kubernetes-validate the
# rendering and the chart's CRD (what `helm template --include-crds` adds, verbatim). The rendering, without
# the CRD (whose PodSpec schema names every field), stays in $work/NAME.yaml for the checks that follow.
validate() {
  local name=$1 kube=$2 schemas=$3
  shift 3
  check "helm template $name (Kubernetes $kube) | kubernetes-validate -k $schemas --strict" \
    render_and_validate "$work/$name.yaml" "$kube" "$schemas" "$@"
}

# renders NAME WHAT PATTERN / lacks NAME WHAT PATTERN: the rendering NAME has (lacks) a line matching PATTERN.
renders() { check "$1 renders $2" grep -qE "$3" "$work/$1.yaml"; }
lacks() { check "$1 leaves out $2" fails grep -qE "$3" "$work/$1.yaml"; }

log "helm: $HELM"
log "kubernetes-validate: $KUBERNETES_VALIDATE, hadolint: $HADOLINT"

# 1. The CRD: the chart's copy is the generated file (regenerate both with
#    `cargo run -- crd > crds/peapod.dev_podgroups.yaml && cp crds/peapod.dev_podgroups.yaml charts/peapod/crds/`).
check "charts/peapod/crds/peapod.dev_podgroups.yaml == crds/peapod.dev_podgroups.yaml" \
  cmp crds/peapod.dev_podgroups.yaml "$CHART/crds/peapod.dev_podgroups.yaml"

# 2. helm lint and the values schema.
check "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
check "helm lint --strict -f ci/all-values.yaml" "$HELM" lint --strict "$CHART" -f "$ALL_VALUES"
rejects "an unknown key" --set agent.logLevle=debug
rejects "a bad pullPolicy" --set image.pullPolicy=Sometimes
rejects "a port out of range" --set metrics.port=70000
rejects "a relative stateDir" --set runtime.stateDir=var/lib/peapod
rejects "a bad memory request" --set resources.requests.memory=lots
rejects "a toleration with a bad operator" --set 'tolerations[0].operator=Maybe'
rejects "extraArgs that are not flags" --set 'agent.extraArgs[0]=agent'
rejects "serviceAccount.create=false without a name" --set serviceAccount.create=false
rejects "an unknown Pod Security level" --set podSecurity.level=strict

# 3. Renderings validated against the Kubernetes API schemas.
validate default-1.20 1.20.0 "$OLDEST_SCHEMAS"
lacks default-1.20 "maxSurge (not in the 1.20 API)" 'maxSurge'
validate default-1.37 "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS"
renders default-1.37 "maxSurge: 0" '^ +maxSurge: 0$'
lacks default-1.37 "the admission policy (not enabled)" 'kind: ValidatingAdmissionPolicy'
validate default-1.37-vap-api "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS" --api-versions "$VAP_API"
lacks default-1.37-vap-api "the per-node admission policy (served but not enabled)" 'name: peapod-per-node$'
lacks default-1.37-vap-api "every admission policy (served, both off by default)" 'kind: ValidatingAdmissionPolicy'
validate default-1.37-vap-api-pss "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS" --api-versions "$VAP_API" \
  --set podSecurity.admissionPolicy=true
renders default-1.37-vap-api-pss "the Pod Security admission policy (served, enabled)" 'name: peapod-pod-security$'
validate all-1.20 1.20.0 "$OLDEST_SCHEMAS" -f "$ALL_VALUES"
lacks all-1.20 "the admission policy (enabled, not served)" 'kind: ValidatingAdmissionPolicy'
validate all-1.30 1.30.0 1.30.0 -f "$ALL_VALUES" --api-versions "$VAP_API"
renders all-1.30 "the admission policy and its binding" 'kind: ValidatingAdmissionPolicyBinding'
validate all-1.37 "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS" -f "$ALL_VALUES" --api-versions "$VAP_API"
validate all-1.37-no-nodelost "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS" -f "$ALL_VALUES" --api-versions "$VAP_API" \
  --set admissionPolicy.allowNodeLostStatus=false
lacks all-1.37-no-nodelost "the NodeLost exception" "phase == 'Unknown'"
validate no-rbac-no-cni "$NEWEST_SCHEMAS" "$NEWEST_SCHEMAS" --set rbac.create=false \
  --set serviceAccount.create=false --set serviceAccount.name=existing --set cni.enabled=false \
  --set probes.liveness.enabled=false --set probes.readiness.enabled=false --set probes.startup.enabled=false
lacks no-rbac-no-cni "RBAC, the ServiceAccount, CNI mounts and probes" \
  'kind: (ClusterRole|Role|ServiceAccount)$|name: cni-|Probe:'

# 4. The Dockerfile.
check "hadolint Dockerfile" "$HADOLINT" Dockerfile

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
