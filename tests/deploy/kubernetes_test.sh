#!/usr/bin/env bash
# The Kubernetes manifests (deploy/kubernetes), as a cluster would get them:
# every kustomization (overlays/*, and deploy/kubernetes itself, kept for the
# old `kubectl apply -k deploy/kubernetes`) is rendered with `kubectl
# kustomize`, and every rendered object is validated offline against the
# Kubernetes schemas and the Prometheus Operator's CRDs, unknown fields
# included (validate-manifests.mjs, npm kubernetes-models and
# @kubernetes-models/prometheus-operator). The single and scaled overlays must also be what
# deploy/README.md says (replicas, Redis or none, PodDisruptionBudget, drain
# timings), and deploy/kubernetes must render exactly the base (no CRDs, no NetworkPolicy).
#
# CI's kubectl is Debian 12's kubernetes-client (1.20, kustomize v2.0.3), a
# developer's is often newer: the kustomizations are written for both.
# KUBECTL=/path/to/kubectl picks another one.
# Node packages: `npm ci` in tests/deploy when node_modules is missing or
# package-lock.json changed (from the npm registry; cached after that).
# Usage: kubernetes_test.sh REPO_ROOT
set -euo pipefail
root=${1:?usage: $0 REPO_ROOT}
here=$(cd "$(dirname "$0")" && pwd)
k8s=$root/deploy/kubernetes
kubectl=${KUBECTL:-kubectl}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v "$kubectl" >/dev/null || fail "no kubectl (scripts/install-deps.sh --test installs Debian's kubernetes-client)"
command -v node >/dev/null && command -v npm >/dev/null || fail "no node/npm (scripts/install-deps.sh --test installs them)"
echo "kubectl $("$kubectl" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1), node $(node --version)"

# One npm ci per lock file, also with tests running in parallel.
exec 9<"$here/package-lock.json"
flock 9
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp=$here/node_modules/.package-lock.sha256
if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error --prefer-offline) >"$work/npm.log" 2>&1 || {
    cat "$work/npm.log" >&2
    fail "npm ci in $here"
  }
  echo "$lock_sum" >"$stamp"
fi
flock -u 9
validate() { node "$here/validate-manifests.mjs" "$@"; }

# The validator itself: each defect of the broken fixture must be named.
if validate "$here/fixtures/broken.yaml" >/dev/null 2>"$work/self-check"; then
  fail "validate-manifests.mjs accepted fixtures/broken.yaml"
fi
for expected in '/spec/replica: unknown field "replica"' '/spec/replicas: must be integer' \
  'unknown apiVersion/kind "apps/v1"/"Deploymnt"' 'unknown apiVersion/kind "policy/v1beta9"/"PodDisruptionBudget"' \
  'ServiceMonitor/crd-unknown-field: /spec/endpoints/0/intervall: unknown field "intervall"'; do
  grep -qF -- "$expected" "$work/self-check" || {
    cat "$work/self-check" >&2
    fail "validate-manifests.mjs did not report: $expected"
  }
done
echo "ok: the validator rejects an unknown field (also in a CRD), a wrong type, an unknown kind and apiVersion"

render() {  # render DIR OUT
  if ! "$kubectl" kustomize "$1" >"$2" 2>"$work/stderr"; then
    cat "$work/stderr" >&2
    fail "kubectl kustomize ${1#"$root"/}"
  fi
}
overlays=()
for dir in "$k8s"/overlays/*/; do overlays+=("$(basename "$dir")"); done
for required in single scaled; do
  [[ " ${overlays[*]} " == *" $required "* ]] || fail "no overlay deploy/kubernetes/overlays/$required"
done
for overlay in "${overlays[@]}"; do
  render "$k8s/overlays/$overlay" "$work/$overlay.yaml"
  expect=()
  [[ $overlay == single || $overlay == scaled ]] && expect=(--expect "$overlay")
  echo -n "overlays/$overlay: "
  validate "${expect[@]}" "$work/$overlay.yaml" || fail "overlays/$overlay (rendered: kubectl kustomize deploy/kubernetes/overlays/$overlay)"
done

# The old `kubectl apply -k deploy/kubernetes`: the base alone, so it needs
# no CRDs and adds no NetworkPolicy to an existing install.
render "$k8s" "$work/top.yaml"
render "$k8s/base" "$work/base.yaml"
cmp -s "$work/top.yaml" "$work/base.yaml" || {
  diff "$work/base.yaml" "$work/top.yaml" >&2 || true
  fail "deploy/kubernetes renders otherwise than deploy/kubernetes/base"
}
grep -qE '^kind: (ServiceMonitor|PrometheusRule|NetworkPolicy)$' "$work/top.yaml" &&
  fail "deploy/kubernetes renders a CRD object or a NetworkPolicy"
echo -n "deploy/kubernetes (the base alone): "
validate "$work/top.yaml" || fail "deploy/kubernetes"
echo "ok: deploy/kubernetes renders exactly the base, with no CRD object and no NetworkPolicy"
echo -n "base/secret.example.yaml: "
validate "$k8s/base/secret.example.yaml" || fail "deploy/kubernetes/base/secret.example.yaml"
# The PrometheusRule is generated from the plain rules file: they must agree.
python3 "$root/deploy/prometheus/make-prometheusrule.py" --check ||
  fail "deploy/kubernetes/monitoring/prometheusrule.yaml differs from deploy/prometheus/notify-gateway.rules.yml"
echo "ok: the PrometheusRule carries deploy/prometheus/notify-gateway.rules.yml"
echo "ok: every overlay renders and validates"
