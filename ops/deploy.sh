#!/usr/bin/env bash
# Deploys Valerix to a Kubernetes cluster; written for DigitalOcean Kubernetes (doctl), works
# with any cluster kubectl can reach.
#
# Usage: ops/deploy.sh [options]
#   --dry-run            render and validate only; print the manifests; touch no cluster
#   --overlay NAME       split (default: orders and inventory apart) or single (role all)
#   --monitoring         also apply ops/k8s/monitoring (needs the Prometheus Operator CRDs)
#   --cluster NAME       DigitalOcean cluster: fetch its credentials with doctl first
#   --registry REGISTRY  image registry, e.g. registry.digitalocean.com/acme
#   --tag TAG            image tag (default: the overlay's)
#   --push               build and push both images with docker before deploying
#   --secrets DIR        create or update the Secrets from DIR/<secret-name>.env files
#   --output FILE        with --dry-run, write the manifests to FILE instead of stdout
#   --timeout DURATION   how long to wait for each rollout (default 5m)
# Environment: VALERIX_IMAGE_SOURCE, the repository URL for the images' OCI source label (--push).
# Secrets the manifests reference (never kept in the repository): valerix-app,
# valerix-postgres, valerix-redis, valerix-backup; keys in ops/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
namespace=valerix
secret_names=(valerix-app valerix-postgres valerix-redis valerix-backup)

log() { printf 'deploy: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '/^# Usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

dry_run=0 overlay=split monitoring=0 cluster="" registry="" tag="" push=0 secrets_dir="" output="" timeout=5m
while (($# > 0)); do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --overlay) (($# > 1)) || usage; overlay="$2"; shift ;;
    --monitoring) monitoring=1 ;;
    --cluster) (($# > 1)) || usage; cluster="$2"; shift ;;
    --registry) (($# > 1)) || usage; registry="${2%/}"; shift ;;
    --tag) (($# > 1)) || usage; tag="$2"; shift ;;
    --push) push=1 ;;
    --secrets) (($# > 1)) || usage; secrets_dir="$2"; shift ;;
    --output) (($# > 1)) || usage; output="$2"; shift ;;
    --timeout) (($# > 1)) || usage; timeout="$2"; shift ;;
    -h | --help) usage ;;
    *) log "unknown option: $1"; usage ;;
  esac
  shift
done

[[ "$overlay" == split || "$overlay" == single ]] || die "--overlay must be split or single"
[[ -z "$tag" || "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--tag is not a valid image tag: $tag"
[[ -z "$output" ]] || ((dry_run)) || die "--output goes with --dry-run"
((!push)) || [[ -n "$registry" && -n "$tag" ]] || die "--push needs --registry and --tag"
if [[ -n "$secrets_dir" ]]; then
  [[ -d "$secrets_dir" ]] || die "--secrets: no such folder: $secrets_dir"
fi

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }
need kubectl "renders the manifests with kubectl kustomize"
need bun "validates the manifests (ops/k8s/validate.ts)"
if ((!dry_run)); then
  [[ -z "$cluster" ]] || need doctl "fetches the cluster's credentials"
  ((!push)) || need docker "builds and pushes the images"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/valerix-deploy.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# A throw-away kustomization on top of the chosen overlay: images, and monitoring if asked.
# kustomize refuses absolute paths to resources, hence the relative ones.
mkdir -p "$work/kustomize"
{
  echo "resources:"
  echo "  - $(realpath --relative-to="$work/kustomize" "$root/ops/k8s/overlays/$overlay")"
  if ((monitoring)); then
    echo "  - $(realpath --relative-to="$work/kustomize" "$root/ops/k8s/monitoring")"
  fi
  if [[ -n "$registry" || -n "$tag" ]]; then
    echo "images:"
    for image in valerix valerix-backup; do
      echo "  - name: $image"
      [[ -z "$registry" ]] || echo "    newName: $registry/$image"
      [[ -z "$tag" ]] || echo "    newTag: \"$tag\""
    done
  fi
} >"$work/kustomize/kustomization.yaml"

rendered="$work/manifests.yaml"
log "rendering ops/k8s/overlays/$overlay$( ((monitoring)) && echo " + monitoring")"
# kustomize's deprecation notes go to stderr and are not errors.
kubectl kustomize "$work/kustomize" >"$rendered" 2>"$work/kustomize.log" || {
  cat "$work/kustomize.log" >&2
  die "kubectl kustomize failed"
}
log "validating against the Kubernetes schemas (offline)"
(cd "$root" && bun ops/k8s/validate.ts "$rendered") || die "the rendered manifests are not valid"

if ((dry_run)); then
  if [[ -n "$output" ]]; then
    cp "$rendered" "$output"
    log "manifests written to $output"
  else
    cat "$rendered"
  fi
  log "--dry-run: a real run would now"
  ((!push)) || log "  docker build + push $registry/valerix:$tag and $registry/valerix-backup:$tag"
  [[ -z "$cluster" ]] || log "  doctl kubernetes cluster kubeconfig save $cluster"
  [[ -z "$secrets_dir" ]] || log "  create or update the Secrets from $secrets_dir"
  log "  check the Secrets ${secret_names[*]} exist in namespace $namespace"
  log "  kubectl apply the manifests above and wait for every rollout (timeout $timeout)"
  exit 0
fi

if ((push)); then
  # OCI labels: the tag, the commit (when built from a git checkout), and the repository URL
  # from VALERIX_IMAGE_SOURCE if set (never read from the git remote, which may hold credentials).
  revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
  for target in runtime:valerix backup:valerix-backup; do
    ref="$registry/${target#*:}:$tag"
    log "building $ref"
    docker build --target "${target%%:*}" --tag "$ref" \
      --build-arg VERSION="$tag" --build-arg REVISION="$revision" --build-arg SOURCE="${VALERIX_IMAGE_SOURCE:-}" "$root"
    docker push "$ref"
  done
fi

if [[ -n "$cluster" ]]; then
  log "fetching credentials for DigitalOcean cluster $cluster"
  doctl kubernetes cluster kubeconfig save "$cluster"
fi
log "deploying to context $(kubectl config current-context)"

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if [[ -n "$secrets_dir" ]]; then
  for name in "${secret_names[@]}"; do
    file="$secrets_dir/$name.env"
    [[ -f "$file" ]] || continue
    kubectl --namespace "$namespace" create secret generic "$name" --from-env-file="$file" \
      --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    log "secret $name updated from $file"
  done
fi
missing=()
for name in valerix-app valerix-postgres valerix-redis; do
  kubectl --namespace "$namespace" get secret "$name" >/dev/null 2>&1 || missing+=("$name")
done
((${#missing[@]} == 0)) || die "missing Secrets in $namespace: ${missing[*]} (see ops/README.md, or pass --secrets)"
kubectl --namespace "$namespace" get secret valerix-backup >/dev/null 2>&1 \
  || log "warning: no valerix-backup Secret; the daily backup shipment will fail until it exists"

kubectl apply -f "$rendered"

mapfile -t workloads < <(kubectl get -f "$rendered" -o name | grep -E '^(deployment|statefulset)' || true)
for workload in "${workloads[@]}"; do
  log "waiting for $workload"
  kubectl --namespace "$namespace" rollout status "$workload" --timeout="$timeout"
done
log "done"
